"""Pure rules built on the record: no Flask, no I/O, no clock."""
