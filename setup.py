"""The one compiled part: multi-lane md5 (src/archipelago/keep/_md5lanes.c). Optional: where it
cannot be built, keep/md5.py hashes with hashlib alone."""

from setuptools import Extension, setup

setup(ext_modules=[Extension("archipelago.keep._md5lanes", ["src/archipelago/keep/_md5lanes.c"],
                             extra_compile_args=["-O2"], optional=True)])
