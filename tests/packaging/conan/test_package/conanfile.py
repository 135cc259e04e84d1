# sturdy's Conan test package (the recipe's test_package_folder): builds and runs a program that
# links sturdy::sturdy and one that links sturdy::core alone.
import os

from conan import ConanFile
from conan.tools.build import can_run
from conan.tools.cmake import CMake, CMakeDeps, CMakeToolchain, cmake_layout


class SturdyTestPackage(ConanFile):
    settings = "os", "arch", "compiler", "build_type"
    test_type = "explicit"

    def requirements(self):
        self.requires(self.tested_reference_str)

    def layout(self):
        cmake_layout(self)

    def generate(self):
        CMakeDeps(self).generate()
        toolchain = CMakeToolchain(self)
        toolchain.user_presets_path = False  # write nothing into the source tree
        toolchain.cache_variables["STURDY_EXPECTED_VERSION"] = str(self.dependencies["sturdy"].ref.version)
        toolchain.generate()

    def build(self):
        cmake = CMake(self)
        cmake.configure()
        cmake.build()

    def test(self):
        if can_run(self):
            for program in ("test_package", "test_package_core"):
                self.run(os.path.join(self.cpp.build.bindir, program), env="conanrun")
