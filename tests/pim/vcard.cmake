# vCard (src/pim/vcard.c) and the contact converter (src/pim/contact.c): cards
# as Apple Contacts, Google, Thunderbird, Outlook, Android, SOGo and Nextcloud
# write them, in vcard_data/.
abq_unit_test(test_vcard test_vcard.c abq_pim)
target_compile_definitions(test_vcard PRIVATE VCARD_DATA_DIR="${CMAKE_CURRENT_SOURCE_DIR}/vcard_data")
abq_unit_test(test_contact test_contact.c abq_pim)
target_compile_definitions(test_contact PRIVATE VCARD_DATA_DIR="${CMAKE_CURRENT_SOURCE_DIR}/vcard_data")
# The reader, writer and converter fed their seeds (fuzz/corpus/vcard and the
# test cards) through fuzz/fuzz_vcard.c; under clang with -DABQ_FUZZ=ON, a
# libFuzzer target.
abq_fuzz_target(fuzz_vcard LIBS abq_pim
  CORPUS ${CMAKE_SOURCE_DIR}/fuzz/corpus/vcard ${CMAKE_CURRENT_SOURCE_DIR}/vcard_data)
