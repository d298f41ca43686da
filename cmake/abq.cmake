# Helpers shared by the folder CMakeLists.

# abq_library(NAME LIBS...): a static library of every .c file in this folder.
function(abq_library name)
  file(GLOB srcs CONFIGURE_DEPENDS ${CMAKE_CURRENT_SOURCE_DIR}/*.c)
  add_library(${name} STATIC ${srcs})
  target_link_libraries(${name} PUBLIC ${ARGN})
endfunction()

# abq_unit_test(NAME SOURCE LIBS...): a cmocka test run by CTest, and under
# valgrind as NAME-valgrind when ABQ_VALGRIND is on.
function(abq_unit_test name src)
  if(NOT EXISTS ${CMAKE_CURRENT_SOURCE_DIR}/${src})
    message(FATAL_ERROR "test source ${src} is missing")
  endif()
  add_executable(${name} ${src})
  target_link_libraries(${name} PRIVATE ${ARGN} PkgConfig::CMOCKA)
  add_test(NAME ${name} COMMAND ${name})
  set_tests_properties(${name} PROPERTIES LABELS unit)
  if(ABQ_VALGRIND AND NOT ABQ_SANITIZE)
    add_test(NAME ${name}-valgrind COMMAND valgrind --quiet --error-exitcode=99
      --leak-check=full --errors-for-leak-kinds=definite,indirect
      --show-leak-kinds=definite,indirect $<TARGET_FILE:${name}>)
    set_tests_properties(${name}-valgrind PROPERTIES LABELS valgrind)
  endif()
endfunction()

# abq_fuzz_target(NAME LIBS lib... [CORPUS dir...] [FUZZ_SOURCES src...]
#                 [FUZZ_LIBS lib...]): the fuzz target fuzz/NAME.c twice.
# NAME_replay feeds it every file of the CORPUS folders (default
# fuzz/corpus/<NAME without "fuzz_">), linked with LIBS: a unit test in every
# tree, so the sanitizer tree replays the corpus too. Under clang with
# -DABQ_FUZZ=ON, NAME is also a libFuzzer target (bench/fuzz runs it): with
# FUZZ_SOURCES the parser's sources are compiled in (for their coverage
# instrumentation) and it links FUZZ_LIBS, else it links LIBS.
function(abq_fuzz_target name)
  cmake_parse_arguments(F "" "" "LIBS;CORPUS;FUZZ_SOURCES;FUZZ_LIBS" ${ARGN})
  if(NOT F_CORPUS)
    string(REGEX REPLACE "^fuzz_" "" short ${name})
    set(F_CORPUS ${CMAKE_SOURCE_DIR}/fuzz/corpus/${short})
  endif()
  add_executable(${name}_replay ${CMAKE_SOURCE_DIR}/fuzz/${name}.c ${CMAKE_SOURCE_DIR}/fuzz/replay.c)
  target_compile_definitions(${name}_replay PRIVATE ABQ_FUZZ_REPLAY)
  target_link_libraries(${name}_replay PRIVATE ${F_LIBS})
  add_test(NAME ${name}_replay COMMAND ${name}_replay ${F_CORPUS})
  set_tests_properties(${name}_replay PROPERTIES LABELS unit)
  set_property(GLOBAL APPEND PROPERTY ABQ_FUZZ_TARGETS ${name})
  if(CMAKE_C_COMPILER_ID STREQUAL "Clang" AND ABQ_FUZZ)
    add_executable(${name} ${CMAKE_SOURCE_DIR}/fuzz/${name}.c ${F_FUZZ_SOURCES})
    target_compile_options(${name} PRIVATE -fsanitize=fuzzer,address,undefined)
    target_link_options(${name} PRIVATE -fsanitize=fuzzer,address,undefined)
    if(F_FUZZ_SOURCES)
      target_link_libraries(${name} PRIVATE ${F_FUZZ_LIBS})
    else()
      target_link_libraries(${name} PRIVATE ${F_LIBS})
    endif()
  endif()
endfunction()
