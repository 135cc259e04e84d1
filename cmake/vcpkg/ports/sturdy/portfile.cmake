# vcpkg port for sturdy (an overlay port: vcpkg install sturdy --overlay-ports=<sturdy>/cmake/vcpkg/ports).
#
# REPO and SHA512 are what a published port carries: the repository sturdy is released from, and
# the hash of the release archive. Fill them in when a release is tagged; with `SHA512 0`, vcpkg
# downloads the archive and prints its real hash to paste here. To build this working copy
# instead, see README.md ("Use it in your project").
# tests/packaging/vcpkg_port.cmake (ctest -L packaging) configures and installs sturdy with the
# OPTIONS below and checks the tree and the usage file, so keep them on single lines.
vcpkg_from_github(
    OUT_SOURCE_PATH SOURCE_PATH
    REPO sturdy-cpp/sturdy
    REF "v${VERSION}"
    SHA512 0
    HEAD_REF main
)

set(VCPKG_BUILD_TYPE release)  # header-only: nothing differs in a debug build

vcpkg_cmake_configure(
    SOURCE_PATH "${SOURCE_PATH}"
    OPTIONS
        -DSTURDY_BUILD_TESTS=OFF
        -DSTURDY_BUILD_EXAMPLES=OFF
        -DSTURDY_BUILD_BENCHMARKS=OFF
        -DSTURDY_INSTALL=ON
        -DSTURDY_WITH_CURL=ON
        -DSTURDY_INSTALL_CMAKEDIR=share/sturdy
)
vcpkg_cmake_install()
vcpkg_cmake_config_fixup(CONFIG_PATH share/sturdy)

file(REMOVE_RECURSE "${CURRENT_PACKAGES_DIR}/debug")
file(INSTALL "${CMAKE_CURRENT_LIST_DIR}/usage" DESTINATION "${CURRENT_PACKAGES_DIR}/share/${PORT}")
vcpkg_install_copyright(FILE_LIST "${SOURCE_PATH}/LICENSE")
