// Shared by the C++ and the CUDA kernels: plain C++ that nvcc compiles for host and device.
#pragma once

#ifdef __CUDACC__
#define PYPRUNE_HD __host__ __device__ __forceinline__
#else
#define PYPRUNE_HD inline
#endif
