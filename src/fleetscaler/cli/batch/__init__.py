"""`fleetscaler submit` and `fleetscaler results`: run an S3 prefix through the fleet as a batch.

`journal` is the batch's local record (SQLite), `pacing` the send rate's back-off, `submit` and `results`
the two commands, `progress` the progress line they draw on stderr.
"""
