# The time zone conversions (src/pim/tz.c): the blob, the zones of every
# continent against the tz database's rules, matching phones' blobs back.
abq_unit_test(test_tz test_tz.c abq_pim)
# Any bytes as a blob, decoded, matched to a zone and converted back
# (fuzz/fuzz_tzblob.c); under clang with -DABQ_FUZZ=ON, a libFuzzer target
# with tz.c compiled in for its coverage.
abq_fuzz_target(fuzz_tzblob LIBS abq_pim
  FUZZ_SOURCES ${CMAKE_SOURCE_DIR}/src/pim/tz.c
  FUZZ_LIBS abq_lib PkgConfig::LIBICAL PkgConfig::ICU)
