/*
 * rpc_auth.c — the token challenge–response of tcp:// services.
 *
 * A tcp:// listener needs a shared secret (shoal_rpc_server_set_token); the token never
 * crosses the network. On a new connection the server sends ACCEPT carrying a fresh
 * 32-byte random challenge; the client answers with an AUTH frame carrying
 * HMAC-SHA256(token, "shoal-rpc-auth:" || challenge); the server compares in constant
 * time and answers ACCEPT (accepted) or TRAILERS UNAUTHENTICATED and hangs up. Until
 * then it acts on no frame of that connection.
 *
 * SHA-256 (FIPS 180-4) and HMAC (RFC 2104) are written out here, as the runtime links
 * no crypto library; both are checked against the standards' test vectors.
 */
#include <string.h>
#include <sys/random.h>

#include "rpc_internal.h"

typedef struct sha256 {
    uint32_t h[8];
    uint8_t block[64];
    size_t fill;
    uint64_t bits;
} sha256;

static const uint32_t K[64] = {
    0x428a2f98, 0x71374491, 0xb5c0fbcf, 0xe9b5dba5, 0x3956c25b, 0x59f111f1, 0x923f82a4,
    0xab1c5ed5, 0xd807aa98, 0x12835b01, 0x243185be, 0x550c7dc3, 0x72be5d74, 0x80deb1fe,
    0x9bdc06a7, 0xc19bf174, 0xe49b69c1, 0xefbe4786, 0x0fc19dc6, 0x240ca1cc, 0x2de92c6f,
    0x4a7484aa, 0x5cb0a9dc, 0x76f988da, 0x983e5152, 0xa831c66d, 0xb00327c8, 0xbf597fc7,
    0xc6e00bf3, 0xd5a79147, 0x06ca6351, 0x14292967, 0x27b70a85, 0x2e1b2138, 0x4d2c6dfc,
    0x53380d13, 0x650a7354, 0x766a0abb, 0x81c2c92e, 0x92722c85, 0xa2bfe8a1, 0xa81a664b,
    0xc24b8b70, 0xc76c51a3, 0xd192e819, 0xd6990624, 0xf40e3585, 0x106aa070, 0x19a4c116,
    0x1e376c08, 0x2748774c, 0x34b0bcb5, 0x391c0cb3, 0x4ed8aa4a, 0x5b9cca4f, 0x682e6ff3,
    0x748f82ee, 0x78a5636f, 0x84c87814, 0x8cc70208, 0x90befffa, 0xa4506ceb, 0xbef9a3f7,
    0xc67178f2};

static uint32_t ror(uint32_t x, int n)
{
    return x >> n | x << (32 - n);
}

static void sha256_block(sha256 *s, const uint8_t *p)
{
    uint32_t w[64], v[8];
    for (int i = 0; i < 16; i++)
        w[i] = (uint32_t)p[4 * i] << 24 | (uint32_t)p[4 * i + 1] << 16 |
               (uint32_t)p[4 * i + 2] << 8 | p[4 * i + 3];
    for (int i = 16; i < 64; i++) {
        uint32_t s0 = ror(w[i - 15], 7) ^ ror(w[i - 15], 18) ^ w[i - 15] >> 3;
        uint32_t s1 = ror(w[i - 2], 17) ^ ror(w[i - 2], 19) ^ w[i - 2] >> 10;
        w[i] = w[i - 16] + s0 + w[i - 7] + s1;
    }
    memcpy(v, s->h, sizeof(v));
    for (int i = 0; i < 64; i++) {
        uint32_t t1 = v[7] + (ror(v[4], 6) ^ ror(v[4], 11) ^ ror(v[4], 25)) +
                      ((v[4] & v[5]) ^ (~v[4] & v[6])) + K[i] + w[i];
        uint32_t t2 = (ror(v[0], 2) ^ ror(v[0], 13) ^ ror(v[0], 22)) +
                      ((v[0] & v[1]) ^ (v[0] & v[2]) ^ (v[1] & v[2]));
        memmove(v + 1, v, 7 * sizeof(v[0]));
        v[4] += t1;
        v[0] = t1 + t2;
    }
    for (int i = 0; i < 8; i++)
        s->h[i] += v[i];
}

static void sha256_init(sha256 *s)
{
    static const uint32_t h0[8] = {0x6a09e667, 0xbb67ae85, 0x3c6ef372, 0xa54ff53a,
                                   0x510e527f, 0x9b05688c, 0x1f83d9ab, 0x5be0cd19};
    memcpy(s->h, h0, sizeof(h0));
    s->fill = 0;
    s->bits = 0;
}

static void sha256_add(sha256 *s, const void *data, size_t len)
{
    const uint8_t *p = data;
    s->bits += (uint64_t)len * 8;
    while (len) {
        size_t n = 64 - s->fill < len ? 64 - s->fill : len;
        memcpy(s->block + s->fill, p, n);
        s->fill += n;
        p += n;
        len -= n;
        if (s->fill == 64) {
            sha256_block(s, s->block);
            s->fill = 0;
        }
    }
}

static void sha256_end(sha256 *s, uint8_t out[32])
{
    uint64_t bits = s->bits;
    uint8_t pad = 0x80, zero = 0, len[8];
    sha256_add(s, &pad, 1);
    while (s->fill != 56)
        sha256_add(s, &zero, 1);
    for (int i = 0; i < 8; i++)
        len[i] = (uint8_t)(bits >> (56 - 8 * i));
    sha256_add(s, len, 8);
    for (int i = 0; i < 8; i++)
        for (int j = 0; j < 4; j++)
            out[4 * i + j] = (uint8_t)(s->h[i] >> (24 - 8 * j));
}

void rpc__hmac_sha256(const void *key, size_t key_len, const void *msg, size_t len,
                      uint8_t out[32])
{
    uint8_t k[64] = {0}, pad[64], inner[32];
    sha256 s;
    if (key_len > 64) {
        sha256_init(&s);
        sha256_add(&s, key, key_len);
        sha256_end(&s, k);
    } else if (key_len) {
        memcpy(k, key, key_len);
    }
    for (int i = 0; i < 64; i++)
        pad[i] = k[i] ^ 0x36;
    sha256_init(&s);
    sha256_add(&s, pad, 64);
    sha256_add(&s, msg, len);
    sha256_end(&s, inner);
    for (int i = 0; i < 64; i++)
        pad[i] = k[i] ^ 0x5c;
    sha256_init(&s);
    sha256_add(&s, pad, 64);
    sha256_add(&s, inner, 32);
    sha256_end(&s, out);
}

/* ---- the exchange ------------------------------------------------------------------ */

#define AUTH_LABEL "shoal-rpc-auth:"

int rpc__auth_challenge(uint8_t challenge[RPC_CHALLENGE_LEN])
{
    size_t got = 0;
    while (got < RPC_CHALLENGE_LEN) {
        ssize_t n = getrandom(challenge + got, RPC_CHALLENGE_LEN - got, 0);
        if (n <= 0)
            return shoal__err(SHOAL_ESYS, "rpc: getrandom failed");
        got += (size_t)n;
    }
    return 0;
}

void rpc__auth_answer(const char *token, const uint8_t *challenge, size_t len,
                      uint8_t out[32])
{
    uint8_t msg[sizeof(AUTH_LABEL) - 1 + 64];
    size_t n = len < 64 ? len : 64;
    memcpy(msg, AUTH_LABEL, sizeof(AUTH_LABEL) - 1);
    memcpy(msg + sizeof(AUTH_LABEL) - 1, challenge, n);
    rpc__hmac_sha256(token, strlen(token), msg, sizeof(AUTH_LABEL) - 1 + n, out);
}

int rpc__auth_check(const char *token, const uint8_t challenge[RPC_CHALLENGE_LEN],
                    const uint8_t *answer, size_t len)
{
    uint8_t want[32];
    rpc__auth_answer(token, challenge, RPC_CHALLENGE_LEN, want);
    unsigned diff = len != 32;
    for (size_t i = 0; i < 32; i++)
        diff |= want[i] ^ (i < len ? answer[i] : 0);
    return diff == 0;
}
