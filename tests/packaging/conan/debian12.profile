# Debian 12's own toolchain and libraries, for `conan create` without any download (.ci/run):
#   conan create . --profile:all tests/packaging/conan/debian12.profile
# [platform_requires] makes Conan take nlohmann_json and libcurl as the system provides them
# (apt: nlohmann-json3-dev, libcurl4-openssl-dev); their versions are Debian 12's, which satisfy
# the recipe's ranges. Conan then generates no CMake files for them: the test package's
# find_package() finds Debian's nlohmann_jsonConfig.cmake and CMake's own FindCURL.
[settings]
os=Linux
arch={{ detect_api.detect_arch() }}
compiler=gcc
compiler.version=12
compiler.libcxx=libstdc++11
compiler.cppstd=17
build_type=Release

[platform_requires]
nlohmann_json/3.11.2
libcurl/7.88.1

[conf]
tools.build:compiler_executables={"c": "gcc", "cpp": "g++"}
tools.cmake.cmaketoolchain:generator=Ninja
