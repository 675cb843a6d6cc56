"""Builds the extension pyprune_ext._C; the package's metadata is in pyproject.toml.

One extension holds every op: the CPU kernels always, the CUDA kernels when asked for or possible.
The sources sit in fixed places (csrc/README.md), and a file anywhere else stops the build:
  csrc/*.cpp, csrc/common/*.cpp,          compiled once, with the baseline flags: the schemas,
  csrc/<family>/*.cpp, .../autograd/*.cpp the entry points (checks, allocation, dtype) and their
                                          TORCH_LIBRARY_IMPL registrations
  csrc/<family>/cpu/*.cpp                 the CPU kernels, torch-free, compiled once per CPU
                                          capability: on x86-64 for the baseline instruction set,
                                          AVX2 (x86-64-v3) and AVX-512 (x86-64-v4 + VPOPCNTDQ),
                                          elsewhere for the baseline only; the library calls the
                                          best copy the CPU runs (csrc/common/cpu_capability.h)
  csrc/<family>/cuda/*.cu, *.cpp          the CUDA kernels and their bindings, CUDA builds only

Environment switches (read at build time):
  FORCE_CUDA=1            build the CUDA kernels even without a visible GPU
  TORCH_CUDA_ARCH_LIST    a non-empty value also asks for a CUDA build (for GPU-less build hosts)
  FORCE_ONLY_CPU=1        never build CUDA
  DEBUG=1                 -O0 -g
  NVCC_FLAGS              extra nvcc flags
"""
import glob
import os
import platform
import re
import subprocess
import tempfile

import torch
from setuptools import setup
from torch.utils.cpp_extension import CUDA_HOME, BuildExtension, CppExtension, CUDAExtension

# The copies of the CPU kernels: capability -> compiler flags. cpu_capability.cpp checks the same
# features at run time before it lets a capability run.
CPU_CAPABILITIES = {
    "default": [],
    "avx2": ["-march=x86-64-v3"],
    "avx512": ["-march=x86-64-v4", "-mavx512vpopcntdq"],
}
ONCE_SOURCES = ["csrc/*.cpp", "csrc/*/*.cpp", "csrc/*/autograd/*.cpp"]   # csrc/*/*.cpp: common/ too
CPU_KERNEL_SOURCES = ["csrc/*/cpu/*.cpp"]
CUDA_SOURCES = ["csrc/*/cuda/*.cu", "csrc/*/cuda/*.cpp"]


# Folder names with a meaning inside a family; at the top of csrc/ they are no family.
_NOT_FAMILIES = ("cpu", "cuda", "autograd")


def _sources(patterns):
    paths = {path for pattern in patterns for path in glob.glob(pattern)}
    return sorted(path for path in paths if path.split(os.sep)[1] not in _NOT_FAMILIES)


def _check_source_places():
    """A source file the patterns above miss would silently not be built: stop instead."""
    known = set(_sources(ONCE_SOURCES + CPU_KERNEL_SOURCES + CUDA_SOURCES))
    stray = sorted(path for ext in ("cpp", "cc", "cu") for path in glob.glob(f"csrc/**/*.{ext}", recursive=True)
                   if path not in known)
    if stray:
        raise SystemExit(f"pyprune_ext: {', '.join(stray)}: not in a place the build compiles; see csrc/README.md "
                         "(kernels in csrc/<family>/cpu/, entry points in csrc/<family>/)")


def _flag(name):
    return os.getenv(name, "0") == "1"


def _want_cuda():
    if _flag("FORCE_ONLY_CPU"):
        return False
    if _flag("FORCE_CUDA") or os.getenv("TORCH_CUDA_ARCH_LIST"):
        return True
    return torch.cuda.is_available() and CUDA_HOME is not None


def _cpu_capabilities():
    if platform.machine().lower() in ("x86_64", "amd64"):
        return CPU_CAPABILITIES
    return {"default": CPU_CAPABILITIES["default"]}


_ALIAS_GROUP = re.compile(r"[CD]5E[A-Za-z0-9_]*$")


def _keep_inline_functions_private(objects, capability):
    """Renames the weak functions an AVX2 or AVX-512 object defines (the out-of-line copies of
    inline and template functions from the standard library's and our headers) to
    `name.cpu_<capability>`. Without this the linker keeps one copy of each such function for the
    whole library, and the one it keeps may be the AVX-512 copy that baseline code then calls:
    SIGILL on an older CPU. Weak data (static locals, vtables, type info) keeps its name, so it
    stays shared."""
    suffix = f".cpu_{capability}"
    for obj in objects:
        symbols = subprocess.run(["nm", "--defined-only", obj], check=True, capture_output=True, text=True).stdout
        # W: weak functions; n + C5/D5: the signatures of the groups that hold a class's
        # constructor or destructor aliases, renamed with them so the group stays whole
        weak = [line.split()[-1] for line in symbols.splitlines()
                if (line.split()[1:2] == ["W"] or line.split()[1:2] == ["n"] and _ALIAS_GROUP.search(line))
                and not line.endswith(suffix)]
        if not weak:
            continue
        with tempfile.NamedTemporaryFile("w", suffix=".syms", delete=False) as table:
            table.writelines(f"{name} {name}{suffix}\n" for name in weak)
        try:
            subprocess.run(["objcopy", f"--redefine-syms={table.name}", obj], check=True)
        finally:
            os.unlink(table.name)


class BuildExtensionPerCpuCapability(BuildExtension):
    """Compiles the CPU kernel files once per capability, each copy into the namespace
    pyprune::cpu_<capability> with its own private copies of the header functions it uses. The
    kernels get csrc/ as their only include path: a torch header in a kernel fails the build."""

    def build_extension(self, ext):
        cxx = ext.extra_compile_args["cxx"] if isinstance(ext.extra_compile_args, dict) else ext.extra_compile_args
        for capability, flags in _cpu_capabilities().items():
            macros = ext.define_macros + [("PYPRUNE_CPU_CAPABILITY", capability)]
            # the ninja compile BuildExtension installs takes {"cxx": flags} (and "nvcc" with CUDA)
            post = {"cxx": cxx + flags, "nvcc": []}
            objects = self.compiler.compile(
                _sources(CPU_KERNEL_SOURCES), output_dir=os.path.join(self.build_temp, f"cpu_{capability}"),
                macros=macros, include_dirs=[os.path.abspath("csrc")], debug=self.debug, extra_postargs=post,
                depends=ext.depends)
            if flags:
                _keep_inline_functions_private(objects, capability)
            ext.extra_objects += objects
        super().build_extension(ext)
        _check_every_kernel_registered(self.get_ext_fullpath(ext.name))


def _check_every_kernel_registered(library):
    """A kernel copy that registers nothing leaves its slot undefined; a shared library links
    anyway and would fail only at import. Stop the build instead, naming the slot."""
    undefined = subprocess.run(["nm", "--dynamic", "--undefined-only", "--demangle", library], check=True,
                               capture_output=True, text=True).stdout
    missing = sorted({line.split()[-1] for line in undefined.splitlines() if "pyprune::" in line})
    if missing:
        raise SystemExit(f"pyprune_ext: no kernel registered for {', '.join(missing)}: each copy of a kernel file "
                         "fills its slot with PYPRUNE_REGISTER_CPU_KERNEL (csrc/README.md)")


def _extension():
    _check_source_places()
    with_cuda = _want_cuda()
    sources = _sources(ONCE_SOURCES)
    cxx = ["-O0", "-g"] if _flag("DEBUG") else ["-O3"]
    cxx.append("-fopenmp")  # the C++ standard is the one torch asks for
    macros = [(f"PYPRUNE_BUILT_{capability.upper()}", None) for capability in _cpu_capabilities()
              if capability != "default"]
    # -lstdc++: Debian/Ubuntu Pythons link extensions with `gcc -shared`, which leaves the library
    # without a libstdc++ dependency; its C++ runtime calls (e.g. formatting an int into an error
    # message) then bind unversioned and crashed on an Ubuntu 24.04 CUDA build.
    # py_limited_api: the module uses only CPython's stable ABI (every Python-facing call is an op),
    # so one build serves every CPython from 3.9 and it does not link libtorch_python.
    kwargs = dict(name="pyprune_ext._C", include_dirs=[os.path.abspath("csrc")],
                  extra_link_args=["-fopenmp", "-lstdc++"], py_limited_api=True)
    if with_cuda:
        # Kernels (.cu) are plain CUDA behind launch APIs; the *_cuda.cpp files bind them to torch.
        sources += _sources(CUDA_SOURCES)
        macros.append(("WITH_CUDA", None))
        nvcc = ["-O3", "--expt-relaxed-constexpr", "-lineinfo"] + os.getenv("NVCC_FLAGS", "").split()
        print(f"pyprune_ext: building CPU + CUDA ({CUDA_HOME})")
        return CUDAExtension(sources=sources, define_macros=macros,
                             extra_compile_args={"cxx": cxx, "nvcc": nvcc}, **kwargs)
    print("pyprune_ext: building CPU only")
    return CppExtension(sources=sources, define_macros=macros, extra_compile_args={"cxx": cxx}, **kwargs)


setup(
    ext_modules=[_extension()],
    options={"bdist_wheel": {"py_limited_api": "cp39"}},
    cmdclass={"build_ext": BuildExtensionPerCpuCapability.with_options(use_ninja=True)},
    zip_safe=False,
)
