// The one main() of every Catch2 test executable, for Catch2 v2 and v3. Compiled once
// (the sturdy_catch_main object library) and linked into each test executable.
#if defined(__has_include)
#  if __has_include(<catch2/catch_session.hpp>)
#    define STURDY_CATCH2_V3_MAIN 1
#  endif
#endif

#if defined(STURDY_CATCH2_V3_MAIN)
#  include <catch2/catch_session.hpp>

int main(int argc, char* argv[]) { return Catch::Session().run(argc, argv); }
#else
// Catch2 v2: its single header defines main() (and compiles the framework) here.
#  define CATCH_CONFIG_MAIN
#  include <catch2/catch.hpp>
#endif
