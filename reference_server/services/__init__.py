"""Thin gRPC servicers, one module per service: proto in, domain call, proto out."""
