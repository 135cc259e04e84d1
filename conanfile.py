# Conan 2 recipe for sturdy, a header-only C++17 client for OpenAI-compatible LLM APIs.
#
#   conan create . --profile tests/packaging/conan/debian12.profile   # as CI does (.ci/run)
#
# The version is read from include/sturdy/version.hpp, the one place it is written. The test
# package is tests/packaging/conan/test_package (test_package_folder below).
import os
import re

from conan import ConanFile
from conan.tools.files import copy, load
from conan.tools.layout import basic_layout

required_conan_version = ">=2.0.5"

# CMake files the generated config includes for dependencies taken from the system (see package_info).
_MODULES_DIR = os.path.join("share", "sturdy", "conan")


class SturdyConan(ConanFile):
    name = "sturdy"
    description = "Header-only C++17 client for OpenAI-compatible LLM APIs, with resilience policies"
    license = "MIT"
    topics = ("llm", "openai", "http-client", "retry", "circuit-breaker", "header-only")
    package_type = "header-library"
    settings = "os", "arch", "compiler", "build_type"
    no_copy_source = True
    exports_sources = "include/*", "cmake/conan/*", "LICENSE"
    test_package_folder = "tests/packaging/conan/test_package"

    def set_version(self):
        header = load(self, os.path.join(self.recipe_folder, "include", "sturdy", "version.hpp"))
        match = re.search(r'#\s*define\s+STURDY_VERSION\s+"([^"]+)"', header)
        if not match:
            raise ValueError("include/sturdy/version.hpp defines no STURDY_VERSION")
        self.version = match.group(1)

    def layout(self):
        basic_layout(self, src_folder=".")

    def requirements(self):
        # The ranges sturdy's CMake asks for: nlohmann_json 3.10, libcurl 7.68 (curl_multi_wakeup).
        self.requires("nlohmann_json/[>=3.10 <4]", transitive_headers=True)
        self.requires("libcurl/[>=7.68 <9]", transitive_headers=True)

    def validate(self):
        from conan.tools.build import check_min_cppstd

        check_min_cppstd(self, 17)

    def package_id(self):
        self.info.clear()

    def package(self):
        copy(self, "LICENSE", self.source_folder, os.path.join(self.package_folder, "licenses"))
        copy(self, "*.hpp", os.path.join(self.source_folder, "include"), os.path.join(self.package_folder, "include"))
        copy(self, "*.cmake", os.path.join(self.source_folder, "cmake", "conan"), os.path.join(self.package_folder, _MODULES_DIR))

    def package_info(self):
        # The targets of sturdy's own CMake package: sturdy::core (no libcurl) and sturdy::sturdy,
        # which CMakeDeps makes the aggregate of the components: core + the libcurl transport.
        self.cpp_info.set_property("cmake_file_name", "sturdy")
        self.cpp_info.set_property("cmake_target_name", "sturdy::sturdy")
        self.cpp_info.bindirs = []
        self.cpp_info.libdirs = []

        # A dependency from the profile's [platform_requires] is not among self.dependencies, and
        # a component may not require it (CMakeDeps rejects that). Such a dependency is found and
        # linked by a build module of this package instead (cmake/conan/sturdy-system-*.cmake).
        system_modules = []

        def requirement(package, target):
            if package in self.dependencies:
                return [target]
            system_modules.append(os.path.join(_MODULES_DIR, f"sturdy-system-{package}.cmake"))
            return []

        core = self.cpp_info.components["core"]
        core.set_property("cmake_target_name", "sturdy::core")
        core.requires = requirement("nlohmann_json", "nlohmann_json::nlohmann_json")
        core.bindirs = []
        core.libdirs = []
        if self.settings.os in ("Linux", "FreeBSD"):
            core.system_libs = ["pthread"]

        transport = self.cpp_info.components["curl_transport"]
        transport.set_property("cmake_target_name", "sturdy::curl_transport")
        transport.requires = ["core"] + requirement("libcurl", "libcurl::libcurl")
        transport.bindirs = []
        transport.libdirs = []
        transport.includedirs = []

        self.cpp_info.set_property("cmake_build_modules", system_modules)
