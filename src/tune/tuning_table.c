/* tuning_table.c - the tuned table of a context: buckets, an open-addressing hash table, and
 * the small public calls around it (clear, info, mode). */
#include "tune/tuning.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

int64_t fp4_tuning_bucket_m(int64_t m) {
    if (m < 1) return -1;
    if (m > 256 && m <= 4096) return (m + 255) / 256 * 256;
    int64_t b = m <= 256 ? 1 : 8192;
    while (b < m) {
        if (b > INT64_MAX / 2) return -1;
        b *= 2;
    }
    return b;
}

void fp4_tuning_key_of(const fp4_gemm_desc *d, fp4_tuning_key *key) {
    memset(key, 0, sizeof *key);
    key->m_bucket = fp4_tuning_bucket_m(d->m);
    key->n = d->n;
    key->k = d->k;
    key->a_dtype = (int32_t)d->a_dtype;
    /* W4A16 has no A scales: its layout field means nothing */
    key->a_sf_layout = d->a_dtype == FP4_DTYPE_E2M1 ? (int32_t)d->a_sf_layout : 0;
    key->b_sf_layout = (int32_t)d->b_sf_layout;
    key->d_dtype = (int32_t)d->d_dtype;
}

static uint64_t mix(uint64_t h, uint64_t v) {
    h ^= v + 0x9E3779B97F4A7C15ull + (h << 6) + (h >> 2);
    return h * 0xFF51AFD7ED558CCDull;
}

static uint64_t key_hash(const fp4_tuning_key *k) {
    uint64_t h = 0;
    h = mix(h, (uint64_t)k->m_bucket);
    h = mix(h, (uint64_t)k->n);
    h = mix(h, (uint64_t)k->k);
    h = mix(h, (uint64_t)(k->a_dtype | k->a_sf_layout << 8 | k->b_sf_layout << 16 |
                          (uint64_t)k->d_dtype << 24));
    return h ^ (h >> 29);
}

static int key_equal(const fp4_tuning_key *a, const fp4_tuning_key *b) {
    return a->m_bucket == b->m_bucket && a->n == b->n && a->k == b->k &&
           a->a_dtype == b->a_dtype && a->a_sf_layout == b->a_sf_layout &&
           a->b_sf_layout == b->b_sf_layout && a->d_dtype == b->d_dtype;
}

const fp4_tuning_slot *fp4_tuning_find(const fp4_tuning_table *t, const fp4_tuning_key *key) {
    if (!t->count) return NULL;
    const uint64_t mask = (uint64_t)t->cap - 1;
    for (uint64_t i = key_hash(key) & mask;; i = (i + 1) & mask) {
        const fp4_tuning_slot *s = &t->slots[i];
        if (!s->used) return NULL; /* at most half full: an empty slot always comes */
        if (key_equal(&s->key, key)) return s;
    }
}

static fp4_tuning_slot *slot_for(fp4_tuning_slot *slots, int64_t cap, const fp4_tuning_key *key) {
    const uint64_t mask = (uint64_t)cap - 1;
    for (uint64_t i = key_hash(key) & mask;; i = (i + 1) & mask)
        if (!slots[i].used || key_equal(&slots[i].key, key)) return &slots[i];
}

fp4_status fp4_tuning_put(fp4_ctx *ctx, const fp4_tuning_key *key, fp4_tactic tactic, double us) {
    fp4_tuning_table *t = &ctx->tuning;
    if ((t->count + 1) * 2 > t->cap) {
        const int64_t cap = t->cap ? t->cap * 2 : 64;
        fp4_tuning_slot *slots = calloc((size_t)cap, sizeof *slots);
        if (!slots)
            return FP4_FAIL(ctx, FP4_ERR_OUT_OF_MEMORY, "tuning table: %lld slots",
                            (long long)cap);
        for (int64_t i = 0; i < t->cap; i++)
            if (t->slots[i].used) *slot_for(slots, cap, &t->slots[i].key) = t->slots[i];
        free(t->slots);
        t->slots = slots;
        t->cap = cap;
    }
    fp4_tuning_slot *s = slot_for(t->slots, t->cap, key);
    if (!s->used) t->count++;
    s->used = 1;
    s->key = *key;
    s->tactic = tactic;
    s->us = us;
    return FP4_OK;
}

void fp4_tuning_free(fp4_tuning_table *t) {
    free(t->slots);
    t->slots = NULL;
    t->cap = t->count = 0;
}

void fp4_tuning_device_name(const fp4_ctx *ctx, char *buf, size_t len) {
    size_t i = 0;
    for (const char *p = ctx->info.name; *p && i + 1 < len && i < 255; p++, i++) {
        const unsigned char c = (unsigned char)*p;
        buf[i] = (c < 0x20 || c == 0x7F || c == '"' || c == '\\') ? '_' : (char)c;
    }
    if (len) buf[i < len ? i : len - 1] = 0;
}

fp4_status fp4_tuning_clear(fp4_ctx *ctx) {
    if (!ctx) return FP4_FAIL(NULL, FP4_ERR_INVALID_ARGUMENT, "fp4_tuning_clear: ctx is NULL");
    ctx->last_error[0] = 0;
    fp4_tuning_free(&ctx->tuning);
    ctx->tuning.ignored = 0;
    ctx->tuning.file[0] = 0;
    return FP4_OK;
}

fp4_status fp4_set_autotune(fp4_ctx *ctx, fp4_autotune_mode mode) {
    if (!ctx) return FP4_FAIL(NULL, FP4_ERR_INVALID_ARGUMENT, "fp4_set_autotune: ctx is NULL");
    ctx->last_error[0] = 0;
    if (mode != FP4_AUTOTUNE_OFF && mode != FP4_AUTOTUNE_ON_FIRST_USE)
        return FP4_FAIL(ctx, FP4_ERR_INVALID_ARGUMENT,
                        "fp4_set_autotune: mode = %d (FP4_AUTOTUNE_OFF = 0 or "
                        "FP4_AUTOTUNE_ON_FIRST_USE = 1)",
                        (int)mode);
    ctx->tuning.mode = mode;
    return FP4_OK;
}

void fp4_tuning_info_init(fp4_tuning_info *info) {
    if (!info) return;
    memset(info, 0, sizeof *info);
    info->struct_size = sizeof *info;
}

fp4_status fp4_tuning_get_info(const fp4_ctx *ctx, fp4_tuning_info *info) {
    if (!ctx || !info)
        return FP4_FAIL(NULL, FP4_ERR_INVALID_ARGUMENT, "fp4_tuning_get_info: %s is NULL",
                        ctx ? "info" : "ctx");
    const fp4_status bad = fp4_out_struct_check(
        NULL, "fp4_tuning_get_info", "info", "fp4_tuning_info", info->struct_size,
        FP4_STRUCT_END(fp4_tuning_info, mode), sizeof(fp4_tuning_info));
    if (bad != FP4_OK) return bad;
    fp4_tuning_info full, *out = info;
    fp4_tuning_info_init(&full);
    info = &full; /* filled whole, then the caller's (possibly older, smaller) struct gets what fits */
    info->entries = ctx->tuning.count;
    info->ignored = ctx->tuning.ignored;
    info->mode = ctx->tuning.mode;
    snprintf(info->file, sizeof info->file, "%s", ctx->tuning.file);
    char name[256];
    fp4_tuning_device_name(ctx, name, sizeof name);
    snprintf(info->device_key, sizeof info->device_key, "\"%s\" sm_%d %d SMs %s", name,
             ctx->info.compute_capability, ctx->info.sm_count, fp4_version());
    fp4_out_struct_fill(out, &full, sizeof full);
    return FP4_OK;
}
