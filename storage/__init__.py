"""All persistence: MongoDB through pymongo, checkpoint and trace files through pyarrow.fs, the embedded server. No Ray."""
