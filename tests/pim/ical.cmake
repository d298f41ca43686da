# Calendar items and tasks between iCalendar and EAS (src/pim/event.c,
# task.c, recur.c, ical.c): objects shaped as Apple Calendar, Google,
# Thunderbird, Outlook/Exchange, SOGo and Nextcloud write them (ical_data/),
# through WBXML for every EAS version and back, and phones' Adds and Changes
# as iOS and Android send them.
abq_unit_test(test_event test_event.c abq_pim)
target_compile_definitions(test_event PRIVATE ICAL_DATA_DIR="${CMAKE_CURRENT_SOURCE_DIR}/ical_data")
abq_unit_test(test_task test_task.c abq_pim)
target_compile_definitions(test_task PRIVATE ICAL_DATA_DIR="${CMAKE_CURRENT_SOURCE_DIR}/ical_data")
# Any bytes as a calendar object, to EAS (event and task), through WBXML and
# back as a Change and an Add (fuzz/fuzz_ical.c); under clang with
# -DABQ_FUZZ=ON, a libFuzzer target with src/pim compiled in for its coverage.
file(GLOB pim_fuzz_sources ${CMAKE_SOURCE_DIR}/src/pim/*.c)
abq_fuzz_target(fuzz_ical LIBS abq_pim
  FUZZ_SOURCES ${pim_fuzz_sources}
  FUZZ_LIBS abq_eas abq_lib PkgConfig::LIBICAL PkgConfig::ICU)
