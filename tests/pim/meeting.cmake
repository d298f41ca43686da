# Invitations in mail as Email:MeetingRequest (src/pim/meeting.c): the
# text/calendar parts Thunderbird, Outlook/Exchange, Google Calendar and an
# iPhone send (meeting_data/), through WBXML as a phone decodes them, and a
# whole mail through msgconv first.
abq_unit_test(test_meeting test_meeting.c abq_pim abq_mime)
target_compile_definitions(test_meeting PRIVATE MEETING_DATA_DIR="${CMAKE_CURRENT_SOURCE_DIR}/meeting_data")
# Any bytes as a mail's invitation (fuzz/fuzz_meeting.c); under clang with
# -DABQ_FUZZ=ON, a libFuzzer target with src/pim compiled in for its coverage.
file(GLOB pim_meeting_fuzz_sources ${CMAKE_SOURCE_DIR}/src/pim/*.c)
abq_fuzz_target(fuzz_meeting LIBS abq_pim
  CORPUS ${CMAKE_SOURCE_DIR}/fuzz/corpus/meeting
  FUZZ_SOURCES ${pim_meeting_fuzz_sources}
  FUZZ_LIBS abq_eas abq_lib PkgConfig::LIBICAL PkgConfig::ICU)
