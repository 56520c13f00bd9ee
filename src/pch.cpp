// Compiles src/pch.h once; every LibTorch target reuses the result.
