# Compiler settings shared by every target: warnings, ccache, short __FILE__ names.

# ccache when installed. Precompiled headers need the pch sloppiness to be cacheable.
find_program(BORA_CCACHE ccache)
if(BORA_CCACHE AND NOT CMAKE_CXX_COMPILER_LAUNCHER)
  set(CMAKE_CXX_COMPILER_LAUNCHER
      ${CMAKE_COMMAND} -E env CCACHE_SLOPPINESS=pch_defines,time_macros,include_file_mtime,include_file_ctime ${BORA_CCACHE})
  set(CMAKE_C_COMPILER_LAUNCHER ${CMAKE_CXX_COMPILER_LAUNCHER})
endif()

# Errors carry "src/model/opt.cpp:42", not an absolute path of the build machine.
add_compile_options(-fmacro-prefix-map=${CMAKE_SOURCE_DIR}/=)

# Warnings for our own code (every one of -Wall -Wextra, none switched off);
# third-party headers are included as SYSTEM.
set(BORA_WARNINGS -Wall -Wextra -Wpedantic -Wnon-virtual-dtor -Woverloaded-virtual)
