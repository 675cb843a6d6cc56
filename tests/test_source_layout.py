"""The build's rules on where C++ sources live (csrc/README.md): a file in the wrong place fails
the build with a message that says where it belongs, instead of being silently left out or
compiled with the wrong flags."""
import pathlib
import shutil
import subprocess
import sys

import pytest

ROOT = pathlib.Path(__file__).resolve().parents[1]
CSRC = ROOT / "csrc"
CXX = shutil.which("c++") or shutil.which("g++")

pytestmark = pytest.mark.skipif(not (ROOT / "setup.py").exists(), reason="needs the source checkout")


def syntax_check(tmp_path, code, *defines):
    source = tmp_path / "probe.cpp"
    source.write_text(code)
    return subprocess.run([CXX, "-std=c++17", "-fsyntax-only", f"-I{CSRC}", *defines, str(source)],
                          capture_output=True, text=True, timeout=120)


@pytest.mark.skipif(CXX is None, reason="no C++ compiler")
def test_a_kernel_file_outside_a_cpu_folder_fails_to_compile(tmp_path):
    out = syntax_check(tmp_path, '#include "common/cpu_kernel.h"\n')
    assert out.returncode != 0
    assert "put it in csrc/<family>/cpu/" in out.stderr


@pytest.mark.skipif(CXX is None, reason="no C++ compiler")
def test_an_entry_point_inside_a_cpu_folder_fails_to_compile(tmp_path):
    out = syntax_check(tmp_path, '#include "common/cpu_dispatch.h"\n', "-DPYPRUNE_CPU_CAPABILITY=avx2")
    assert out.returncode != 0
    assert "put it in csrc/<family>/<family>_cpu.cpp" in out.stderr


@pytest.mark.skipif(CXX is None, reason="no C++ compiler")
def test_a_kernel_file_in_its_place_compiles(tmp_path):
    code = ('#include "common/cpu_kernel.h"\n'
            "namespace pyprune {\n"
            "using ProbeFn = int (*)(int);\n"
            "PYPRUNE_DECLARE_CPU_KERNEL(probe_kernel, ProbeFn);\n"
            "namespace PYPRUNE_CPU_NAMESPACE {\n"
            "namespace { int probe(int x) { return x + 1; } }\n"
            "PYPRUNE_REGISTER_CPU_KERNEL(probe_kernel, &probe);\n"
            "}\n}\n")
    out = syntax_check(tmp_path, code, "-DPYPRUNE_CPU_CAPABILITY=avx2")
    assert out.returncode == 0, out.stderr


def setup_py_in_copy(tmp_path, stray=None):
    """Runs `setup.py --version` in a copy of the build files, with one extra source file."""
    for name in ("setup.py", "pyproject.toml", "README.md", "LICENSE"):
        shutil.copy(ROOT / name, tmp_path / name)
    shutil.copytree(CSRC, tmp_path / "csrc")
    if stray:
        (tmp_path / stray).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / stray).write_text("int stray;\n")
    return subprocess.run([sys.executable, "setup.py", "--version"], cwd=tmp_path, capture_output=True, text=True,
                          timeout=300, env={"FORCE_ONLY_CPU": "1", "PATH": "/usr/bin:/bin"})


@pytest.mark.parametrize("stray", ["csrc/cpu/new_kernel.cpp", "csrc/taylor/cpu/extra/deep.cpp",
                                   "csrc/topk/kernels.cu", "csrc/info/cpu/kernel.cc"])
def test_setup_refuses_a_source_it_would_not_build(tmp_path, stray):
    out = setup_py_in_copy(tmp_path, stray)
    assert out.returncode != 0
    assert stray in out.stderr and "csrc/README.md" in out.stderr


def test_setup_accepts_the_tree_as_it_is(tmp_path):
    out = setup_py_in_copy(tmp_path)
    assert out.returncode == 0, out.stderr
