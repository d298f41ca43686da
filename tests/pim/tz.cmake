# The time zone conversions (src/pim/tz.c): the blob, the zones of every
# continent against the tz database's rules, matching phones' blobs back.
abq_unit_test(test_tz test_tz.c abq_pim)
