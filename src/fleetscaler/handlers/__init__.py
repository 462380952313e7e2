"""Lambda entry points: thin powertools wiring around one use case each."""
