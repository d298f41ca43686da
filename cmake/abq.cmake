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
