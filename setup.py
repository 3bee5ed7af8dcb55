"""Builds the compiled kernels (sgm, PSMNet's convolutions); everything else is declared in
pyproject.toml."""

import sys

from setuptools import Extension, setup

if sys.platform == "win32":
    compile_args = ["/O2", "/std:c++17"]
else:
    # -ffp-contract=off: no fused multiply-adds, so the cost rounds the same on every CPU.
    # -g0: no debug information (the module is 6x smaller and builds faster)
    compile_args = ["-O3", "-g0", "-std=c++17", "-ffp-contract=off", "-fno-math-errno",
                    "-fvisibility=hidden"]

# optional: without a C++ compiler the install still succeeds and sgm says it is unavailable
# (depthapp/backends/sgm/native.py) instead of the whole install failing.
setup(ext_modules=[Extension("depthapp.backends.sgm._native",
                             sources=["depthapp/backends/sgm/_native.cpp"],
                             extra_compile_args=compile_args, language="c++", optional=True),
                   # PSMNet's 3x3x3 convolutions on the CPU (oneDNN's are the fallback)
                   Extension("depthapp.backends.psmnet._winograd",
                             sources=["depthapp/backends/psmnet/_winograd.cpp"],
                             extra_compile_args=compile_args, language="c++", optional=True)])
