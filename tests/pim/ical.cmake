# Calendar items and tasks between iCalendar and EAS (src/pim/event.c,
# task.c, recur.c, ical.c): objects shaped as Apple Calendar, Google,
# Thunderbird, Outlook/Exchange, SOGo and Nextcloud write them (ical_data/),
# through WBXML for every EAS version and back, and phones' Adds and Changes
# as iOS and Android send them.
abq_unit_test(test_event test_event.c abq_pim)
target_compile_definitions(test_event PRIVATE ICAL_DATA_DIR="${CMAKE_CURRENT_SOURCE_DIR}/ical_data")
