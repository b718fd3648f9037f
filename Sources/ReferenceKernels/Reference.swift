/// Plain-loop reference implementations: the specification of every kernel, written for
/// clarity, generic over the float type. Tensors are flat row-major arrays; shapes are in the
/// doc comments. Nothing here is fast, and nothing here is meant to be.
public enum Reference {}
