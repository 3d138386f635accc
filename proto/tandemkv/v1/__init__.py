"""Generated wire types of the TandemKV gRPC API (do not edit the *_pb2 files;
regenerate them with `bash proto/regenerate.sh`)."""
