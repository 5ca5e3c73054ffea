# The fuzz build (MPATHD_FUZZ=ON): clang with libFuzzer, ASan and UBSan, in a build
# directory of its own (scripts/test.sh uses build-fuzz/), e.g.
#   cmake -S . -B build-fuzz -DCMAKE_CXX_COMPILER=clang++-16 -DCMAKE_C_COMPILER=clang-16 -DMPATHD_FUZZ=ON
# Every target of the project is compiled with coverage instrumentation
# (-fsanitize=fuzzer-no-link); only the fuzz targets of tests/fuzz link libFuzzer.
if(NOT CMAKE_CXX_COMPILER_ID STREQUAL "Clang")
  message(FATAL_ERROR "MPATHD_FUZZ needs clang (libFuzzer): -DCMAKE_CXX_COMPILER=clang++-16")
endif()
if(CMAKE_CXX_COMPILER_VERSION VERSION_LESS 16)
  # libstdc++ 12's <expected> needs conditionally trivial special members (P0848),
  # which clang implements from 16 on; clang 14 cannot compile mpathd.
  message(FATAL_ERROR "MPATHD_FUZZ needs clang 16 or later (Debian: clang-16 libclang-rt-16-dev)")
endif()
add_compile_options(-fsanitize=fuzzer-no-link,address,undefined -fno-omit-frame-pointer
                    -fno-sanitize-recover=undefined -g)
add_link_options(-fsanitize=address,undefined)
# Clang 16 implements what libstdc++'s <expected> checks __cpp_concepts for but still
# reports the C++20 draft value; without this <expected> is empty.
if(CMAKE_CXX_COMPILER_VERSION VERSION_LESS 19)
  add_compile_options($<$<COMPILE_LANGUAGE:CXX>:-U__cpp_concepts> $<$<COMPILE_LANGUAGE:CXX>:-D__cpp_concepts=202002L>)
endif()
# The other test tiers and the benches belong to the GCC build.
set(MPATHD_BUILD_TESTS OFF)
