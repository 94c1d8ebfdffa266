"""Data: on-the-fly generators and (later) sharded datasets."""
