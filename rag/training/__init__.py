"""Training what the answerer learns: the selector and span model (train, span_train) and the neural
reader (reader_train, reader_calibrate). Only `rag train-*` imports this package; answering never does."""
