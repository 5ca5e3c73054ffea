# Project-wide warning and sanitizer settings, applied through an interface target.
add_library(mpathd_options INTERFACE)
target_compile_options(mpathd_options INTERFACE
  -Wall -Wextra -Wpedantic -Wshadow -Wnon-virtual-dtor -Wold-style-cast
  -Wcast-align -Woverloaded-virtual -Wconversion -Wno-sign-conversion
  -Wdouble-promotion -Wformat=2 -Wimplicit-fallthrough)
if(MPATHD_WERROR)
  target_compile_options(mpathd_options INTERFACE -Werror)
endif()
if(MPATHD_SANITIZE)
  target_compile_options(mpathd_options INTERFACE -fsanitize=address,undefined -fno-omit-frame-pointer -fno-sanitize-recover=undefined)
  target_link_options(mpathd_options INTERFACE -fsanitize=address,undefined)
endif()
