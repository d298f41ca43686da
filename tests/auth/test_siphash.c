/*
 * test_siphash.c: src/lib/siphash.c against the paper's reference vector and
 * against OpenSSL's SipHash-2-4-128 (EVP_MAC "SIPHASH", size 16), for every
 * input length from 0 to 64 bytes, fed whole and in uneven pieces.
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <openssl/core_names.h>
#include <openssl/evp.h>
#include <stdio.h>
#include <string.h>

#include "lib/siphash.h"

/* OpenSSL's answer for key and data[0..n). */
static void
oracle(const uint8_t *key, const uint8_t *data, size_t n, uint8_t out[16])
{
	EVP_MAC *mac = EVP_MAC_fetch(NULL, "SIPHASH", NULL);
	EVP_MAC_CTX *ctx;
	size_t size = 16, olen = 0;
	OSSL_PARAM params[] = {OSSL_PARAM_construct_size_t(OSSL_MAC_PARAM_SIZE, &size),
	                       OSSL_PARAM_construct_end()};

	assert_non_null(mac);
	ctx = EVP_MAC_CTX_new(mac);
	assert_non_null(ctx);
	assert_int_equal(EVP_MAC_init(ctx, key, 16, params), 1);
	assert_int_equal(EVP_MAC_update(ctx, data, n), 1);
	assert_int_equal(EVP_MAC_final(ctx, out, &olen, 16), 1);
	assert_int_equal(olen, 16);
	EVP_MAC_CTX_free(ctx);
	EVP_MAC_free(mac);
}

static void
test_reference_vector(void **state)
{
	/* Key 00..0f, empty input: the first 128-bit vector of the reference code. */
	static const uint8_t want[16] = {0xa3, 0x81, 0x7f, 0x04, 0xba, 0x25, 0xa8, 0xe6,
	                                 0x6d, 0xf6, 0x72, 0x14, 0xc7, 0x55, 0x02, 0x93};
	uint8_t key[16], out[16];
	struct siphash h;

	(void)state;
	for (int i = 0; i < 16; i++)
		key[i] = (uint8_t)i;
	siphash_init(&h, key);
	siphash_final(&h, out);
	assert_memory_equal(out, want, 16);
}

static void
test_against_openssl(void **state)
{
	uint8_t key[16], data[64], want[16], got[16];
	struct siphash h;

	(void)state;
	for (int k = 0; k < 3; k++) {
		for (int i = 0; i < 16; i++)
			key[i] = (uint8_t)(0x5a * k + 17 * i + 3);
		for (int i = 0; i < 64; i++)
			data[i] = (uint8_t)(k * 31 + i * 7 + (i >> 2));
		for (size_t n = 0; n <= 64; n++) {
			oracle(key, data, n, want);
			siphash_init(&h, key);
			siphash_update(&h, data, n);
			siphash_final(&h, got);
			if (memcmp(got, want, 16) != 0)
				fail_msg("key set %d, %zu bytes whole: differs from OpenSSL", k, n);
			/* In pieces of 1, 2, 3, ... bytes: the same answer. */
			siphash_init(&h, key);
			for (size_t off = 0, step = 1; off < n; off += step, step++)
				siphash_update(&h, data + off, off + step <= n ? step : n - off);
			siphash_final(&h, got);
			if (memcmp(got, want, 16) != 0)
				fail_msg("key set %d, %zu bytes in pieces: differs from OpenSSL", k,
				         n);
		}
	}
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_reference_vector),
	    cmocka_unit_test(test_against_openssl),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
