/* A stand-in for the CUDA driver (libcuda.so.1) on machines that have the CUDA toolkit but no
 * GPU driver. TVM's CUDA runtime library links against these nine driver functions; with it
 * loaded, TVM compiles kernels with nvcc into the library instead of leaving CUDA source that
 * only a Python process could compile later. Every call reports that there is no device. It is
 * used while compiling, never shipped. */
#define CUDA_ERROR_NO_DEVICE 100

static const char kName[] = "CUDA_ERROR_NO_DEVICE";
static const char kText[] = "no CUDA driver here (tvmopt's build-time stand-in)";

int cuGetErrorName(int error, const char** text) { *text = kName; return 0; }
int cuGetErrorString(int error, const char** text) { *text = kText; return 0; }
int cuDeviceGetName(char* name, int length, int device) { return CUDA_ERROR_NO_DEVICE; }
int cuFuncSetAttribute(void* f, int attribute, int value) { return CUDA_ERROR_NO_DEVICE; }
int cuLaunchKernelEx(const void* config, void* f, void** params, void** extra) {
  return CUDA_ERROR_NO_DEVICE;
}
int cuModuleGetFunction(void** f, void* module, const char* name) { return CUDA_ERROR_NO_DEVICE; }
int cuModuleLoadData(void** module, const void* image) { return CUDA_ERROR_NO_DEVICE; }
int cuModuleUnload(void* module) { return CUDA_ERROR_NO_DEVICE; }
int cuTensorMapEncodeTiled(void* map, int type, unsigned rank, void* address, const void* dims,
                           const void* strides, const void* box, const void* element_strides,
                           int interleave, int swizzle, int promotion, int fill) {
  return CUDA_ERROR_NO_DEVICE;
}
