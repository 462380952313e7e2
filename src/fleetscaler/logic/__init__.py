"""Pure, AWS-free logic: routing, validation, placement and the scaling state machine."""
