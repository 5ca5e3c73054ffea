include_guard(GLOBAL)
# MPATHD_PYTHON: the Python 3 that runs the integration tests and benches. It must be
# able to import pytest (Debian's python3-pytest, installed by scripts/setup.sh), so the
# first interpreter CMake finds is taken only if it can; otherwise the system's python3
# (a python3 of pyenv, a venv or conda earlier in PATH often lacks pytest). Set
# -DMPATHD_PYTHON=/path/to/python3 to choose another.
if(NOT MPATHD_PYTHON)
  find_package(Python3 COMPONENTS Interpreter)
  find_program(MPATHD_SYSTEM_PYTHON python3 PATHS /usr/bin /bin NO_DEFAULT_PATH)
  foreach(candidate IN ITEMS "${Python3_EXECUTABLE}" "${MPATHD_SYSTEM_PYTHON}")
    if(candidate)
      execute_process(COMMAND "${candidate}" -c "import pytest"
                      RESULT_VARIABLE rv OUTPUT_QUIET ERROR_QUIET)
      if(rv EQUAL 0)
        set(MPATHD_PYTHON "${candidate}" CACHE FILEPATH "Python 3 with pytest for the tests")
        break()
      endif()
    endif()
  endforeach()
  if(NOT MPATHD_PYTHON)
    message(WARNING "no python3 with pytest found (install python3-pytest): "
                    "the integration tests will fail")
    set(MPATHD_PYTHON "${Python3_EXECUTABLE}")
  endif()
endif()
message(STATUS "Python for tests and benches: ${MPATHD_PYTHON}")
