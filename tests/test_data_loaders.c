/* Dataset loaders on small inline files: every format, format detection,
 * Latin-1 titles, quoted commas, HTML entities, gzip input, ties in time. */
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <zlib.h>

#include "gr_test.h"
#include "genrec/dataset.h"

/* tmpdir/dir (created) and tmpdir/dir/name written with text. */
static const char *mkdir_t(const char *dir)
{
    static char buf[4][512];
    static int slot;
    char *b = buf[slot++ & 3];
    snprintf(b, sizeof buf[0], "%s/%s", gr_test_tmpdir(), dir);
    mkdir(b, 0755);
    return b;
}

static const char *put(const char *dir, const char *name, const char *text)
{
    char rel[512];
    mkdir_t(dir);
    snprintf(rel, sizeof rel, "%s/%s", dir, name);
    return gr_test_write_file(rel, text);
}

static void put_gz(const char *dir, const char *name, const char *text)
{
    char p[1024];
    snprintf(p, sizeof p, "%s/%s", mkdir_t(dir), name);
    gzFile g = gzopen(p, "wb");
    gzwrite(g, text, (unsigned)strlen(text));
    gzclose(g);
}

static gr_dataset *load(const char *dir, const char *fmt, int dedup)
{
    gr_load_opts o = gr_load_opts_default();
    o.format = fmt;
    o.dedup = dedup;
    char p[512];
    snprintf(p, sizeof p, "%s/%s", gr_test_tmpdir(), dir);
    gr_dataset *d = gr_dataset_load(p, &o);
    if (!d) fprintf(stderr, "load %s: %s\n", dir, gr_error_message());
    return d;
}

/* The user's item keys in order, space-separated. */
static const char *seq_of(const gr_dataset *d, const char *user)
{
    static char buf[1024];
    buf[0] = '\0';
    int32_t u = gr_test_user_of(d, user);
    if (u < 0) return "(no user)";
    for (int64_t k = d->user_off[u]; k < d->user_off[u + 1]; k++) {
        if (buf[0]) strcat(buf, " ");
        strcat(buf, d->item_key[d->inter_item[k]]);
    }
    return buf;
}

static void test_ml100k(void)
{
    /* user 1: times 5,3,3,9,3 -> order by time, ties in file order: 20 30 50 10 40 */
    put("ml100k", "u.data",
        "1\t10\t5\t5\n1\t20\t3\t3\n1\t30\t4\t3\n2\t10\t1\t7\n1\t40\t2\t9\n1\t50\t1\t3\n2\t30\t2\t1\n");
    put("ml100k", "u.item",
        "10|Caf\xe9 Society (1995)|01-Jan-1995||http://x|0|1|0|0|0|1|0|0|0|0|0|0|0|0|0|0|0|0|0\n"
        "20|Sense &amp; Sensibility   (1995)|01-Jan-1995||http://x|0|0|0|0|0|0|0|0|1|0|0|0|0|0|1|0|0|0|0\n"
        "30|Plain|||x|1|0|0|0|0|0|0|0|0|0|0|0|0|0|0|0|0|0|0\n"
        "99|Unrated|||x|0|0|0|0|0|0|0|0|0|0|0|0|0|0|0|0|0|0|1\n");
    gr_dataset *d = load("ml100k", NULL, 1);
    REQUIRE(d);
    CHECK_STR(d->format, "ml-100k");
    CHECK_STR(d->name, "ml100k");
    CHECK_EQ_INT(d->n_users, 2);
    CHECK_EQ_INT(d->n_items, 5); /* item 99 has text only: dropped */
    CHECK_EQ_INT(d->n_inter, 7);
    CHECK(d->has_time && d->has_rating);
    CHECK_STR(seq_of(d, "1"), "20 30 50 10 40");
    CHECK_STR(seq_of(d, "2"), "30 10");
    /* dense ids in first-appearance order */
    CHECK_STR(d->user_key[0], "1");
    CHECK_STR(d->item_key[0], "10");
    CHECK_STR(d->item_key[1], "20");
    int32_t i10 = gr_test_item_of(d, "10"), i20 = gr_test_item_of(d, "20"), i40 = gr_test_item_of(d, "40");
    REQUIRE(i10 >= 0 && i20 >= 0 && i40 >= 0);
    CHECK_STR(d->item_title[i10], "Caf\xc3\xa9 Society (1995)");
    CHECK_STR(d->item_genres[i10], "Action|Comedy");
    CHECK_STR(d->item_title[i20], "Sense & Sensibility (1995)");
    CHECK_STR(d->item_genres[i20], "Drama|Romance");
    CHECK_STR(d->item_genres[gr_test_item_of(d, "30")], "unknown");
    CHECK_STR(d->item_title[i40], ""); /* no u.item entry: "" never NULL */
    int32_t u1 = gr_test_user_of(d, "1");
    CHECK_NEAR(d->inter_rating[d->user_off[u1]], 3.0, 0);
    CHECK_EQ_INT(d->inter_time[d->user_off[u1] + 4], 9);
    gr_dataset_free(d);

    /* a u.genre file replaces the standard list */
    put("ml100k_g", "u.data", "1\t1\t5\t5\n");
    put("ml100k_g", "u.genre", "Zero|0\nOne|1\n\n");
    put("ml100k_g", "u.item", "1|T|||x|1|1\n");
    d = load("ml100k_g", "ml-100k", 1);
    REQUIRE(d);
    CHECK_STR(d->item_genres[0], "Zero|One");
    gr_dataset_free(d);
}

static void test_mldat(void)
{
    put("ml1m", "ratings.dat", "1::1193::5::978300760\n1::661::3::978302109\n2::1193::4::978298413\n");
    put("ml1m", "movies.dat",
        "1193::One Flew Over the Cuckoo's Nest (1975)::Drama\n"
        "661::James and the Giant Peach: Caf\xe9 (1996)::Animation|Children's|Musical\n"
        "5::Nothing (2000)::(no genres listed)\n");
    put("ml1m", "tags.dat", "1::661::funny::1\n2::661::peach::2\n3::661::funny::3\n");
    gr_dataset *d = load("ml1m", NULL, 1);
    REQUIRE(d);
    CHECK_STR(d->format, "ml-dat");
    CHECK_EQ_INT(d->n_users, 2);
    CHECK_EQ_INT(d->n_items, 2);
    CHECK_EQ_INT(d->n_inter, 3);
    CHECK_STR(seq_of(d, "1"), "1193 661");
    int32_t i = gr_test_item_of(d, "661");
    REQUIRE(i >= 0);
    CHECK_STR(d->item_title[i], "James and the Giant Peach: Caf\xc3\xa9 (1996)");
    CHECK_STR(d->item_genres[i], "Animation|Children's|Musical");
    CHECK_STR(d->item_text[i], "funny, peach");
    gr_dataset_free(d);

    /* a title may itself contain "::" (the first and the last separator count) */
    put("ml1m_c", "ratings.dat", "1::7::5::1\n");
    put("ml1m_c", "movies.dat", "7::Part::Two: A::B (1999)::Drama|War\n");
    d = load("ml1m_c", NULL, 1);
    REQUIRE(d);
    CHECK_STR(d->item_title[0], "Part::Two: A::B (1999)");
    CHECK_STR(d->item_genres[0], "Drama|War");
    gr_dataset_free(d);
}

static void test_mlcsv(void)
{
    put("mlcsv", "ratings.csv",
        "userId,movieId,rating,timestamp\r\n1,1,4.0,964982703\r\n1,3,4.5,964981247\r\n2,1,0.5,964982224\r\n");
    put("mlcsv", "movies.csv",
        "movieId,title,genres\n"
        "1,Toy Story (1995),Adventure|Animation\n"
        "3,\"American President, The (1995)\",Comedy|Drama|Romance\n"
        "4,\"Say \"\"Anything\"\", \xc3\xa9t\xc3\xa9 (1989)\",(no genres listed)\n");
    put("mlcsv", "tags.csv", "userId,movieId,tag,timestamp\n2,3,\"politics, US\",1\n");
    gr_dataset *d = load("mlcsv", NULL, 1);
    REQUIRE(d);
    CHECK_STR(d->format, "ml-csv");
    CHECK_EQ_INT(d->n_items, 2);
    CHECK_STR(seq_of(d, "1"), "3 1");
    int32_t i3 = gr_test_item_of(d, "3");
    REQUIRE(i3 >= 0);
    CHECK_STR(d->item_title[i3], "American President, The (1995)");
    CHECK_STR(d->item_text[i3], "politics, US");
    CHECK_NEAR(d->inter_rating[d->user_off[gr_test_user_of(d, "2")]], 0.5, 0);
    gr_dataset_free(d);

    /* the quoted title with escaped quotes, when rated */
    put("mlcsv2", "ratings.csv", "userId,movieId,rating,timestamp\n1,4,4.0,1\n");
    put("mlcsv2", "movies.csv",
        "movieId,title,genres\n4,\"Say \"\"Anything\"\",\n\xc3\xa9t\xc3\xa9 (1989)\",(no genres listed)\n");
    d = load("mlcsv2", NULL, 1);
    REQUIRE(d);
    CHECK_STR(d->item_title[0], "Say \"Anything\", \xc3\xa9t\xc3\xa9 (1989)"); /* newline inside quotes */
    CHECK_STR(d->item_genres[0], "");
    gr_dataset_free(d);
}

static void test_recbole(void)
{
    put("rb", "toy.inter",
        "item_id:token\trating:float\tuser_id:token\ttimestamp:float\n"
        "i1\t5\tu1\t978300760.0\n"
        "i2\t3\tu1\t978300700\n"
        "i1\t4\tu2\t5\n"
        "i3\t4\tu1\t978300700\n");
    put("rb", "toy.item",
        "item_id:token\tmovie_title:token_seq\tgenre:token_seq\n"
        "i1\tThe Matrix &amp; more\tAction Sci-Fi\n"
        "i2\tCaf\xc3\xa9\t\n");
    gr_dataset *d = load("rb", NULL, 1);
    REQUIRE(d);
    CHECK_STR(d->format, "recbole");
    CHECK_STR(d->name, "toy");
    CHECK_EQ_INT(d->n_users, 2);
    CHECK_EQ_INT(d->n_items, 3);
    CHECK(d->has_time && d->has_rating);
    CHECK_STR(seq_of(d, "u1"), "i2 i3 i1");
    int32_t i1 = gr_test_item_of(d, "i1");
    CHECK_STR(d->item_title[i1], "The Matrix & more");
    CHECK_STR(d->item_genres[i1], "Action|Sci-Fi");
    CHECK_STR(d->item_title[gr_test_item_of(d, "i2")], "Caf\xc3\xa9");
    CHECK_EQ_INT(d->inter_time[d->user_off[gr_test_user_of(d, "u1")] + 2], 978300760);
    gr_dataset_free(d);

    /* no timestamp: order only, times become positions */
    put("rb2", "x.inter", "user_id:token\titem_id:token\na\t1\nb\t1\na\t2\na\t3\n");
    put("rb2", "x.item", "item_id:token\ttext:token_seq\n2\tGlue, Brown. Tapes Adhesives. Gorilla. \n");
    d = load("rb2", NULL, 1);
    REQUIRE(d);
    CHECK(!d->has_time && !d->has_rating && !d->inter_rating);
    CHECK_STR(seq_of(d, "a"), "1 2 3");
    int32_t a = gr_test_user_of(d, "a");
    for (int k = 0; k < 3; k++) CHECK_EQ_INT(d->inter_time[d->user_off[a] + k], k);
    int32_t i2 = gr_test_item_of(d, "2");
    CHECK_STR(d->item_text[i2], "Glue, Brown. Tapes Adhesives. Gorilla.");
    CHECK_STR(d->item_title[i2], "Glue, Brown");
    gr_dataset_free(d);
}

static void test_recbole_seq(void)
{
    put("rbs", "S.train.inter",
        "user_id:token\titem_id_list:token_seq\titem_id:token\n"
        "0\t0\t1\n0\t0 1\t2\n"
        "1\t3\t4\n"
        "2\t5\t6\n2\t5 6\t7\n2\t5 6 7\t8\n");
    put("rbs", "S.valid.inter", "user_id:token\titem_id_list:token_seq\titem_id:token\n0\t0 1 2\t3\n1\t3 4\t5\n");
    put("rbs", "S.test.inter", "user_id:token\titem_id_list:token_seq\titem_id:token\n0\t0 1 2 3\t4\n");
    put("rbs", "S.item2index", "B0A\t0\nB0B\t1\nB0Z\t99\n");
    put("rbs", "S.text",
        "item_id:token\ttext:token_seq\n"
        "B0A\tGorilla Glue, 8 oz. Industrial &amp; Scientific Tapes. Gorilla. \n"
        "B0B\tNo sentence end\n"
        "B0Z\tNot in the data\n");
    gr_dataset *d = load("rbs", NULL, 0);
    REQUIRE(d);
    CHECK_STR(d->format, "recbole-seq");
    CHECK_STR(d->name, "S");
    CHECK(!d->has_time);
    CHECK_EQ_INT(d->n_users, 3);
    CHECK_STR(seq_of(d, "0"), "0 1 2 3 4"); /* test row */
    CHECK_STR(seq_of(d, "1"), "3 4 5");     /* valid row */
    CHECK_STR(seq_of(d, "2"), "5 6 7 8");   /* longest train row */
    CHECK_EQ_INT(d->n_inter, 12);
    CHECK_EQ_INT(d->n_items, 9);
    int32_t i0 = gr_test_item_of(d, "0");
    CHECK_STR(d->item_title[i0], "Gorilla Glue, 8 oz");
    CHECK_STR(d->item_text[i0], "Gorilla Glue, 8 oz. Industrial & Scientific Tapes. Gorilla.");
    CHECK_STR(d->item_title[gr_test_item_of(d, "1")], "No sentence end");
    CHECK_STR(d->item_title[gr_test_item_of(d, "5")], "");
    int32_t u2 = gr_test_user_of(d, "2");
    CHECK_EQ_INT(d->inter_time[d->user_off[u2] + 3], 3);
    gr_dataset_free(d);

    /* a single split file path works too */
    char p[512];
    snprintf(p, sizeof p, "%s/rbs/S.test.inter", gr_test_tmpdir());
    d = gr_dataset_load(p, NULL);
    REQUIRE(d);
    CHECK_STR(d->format, "recbole-seq");
    CHECK_EQ_INT(d->n_users, 3);
    gr_dataset_free(d);
}

static void test_amazon(void)
{
    put_gz("amz", "Tools_5.json.gz",
           "{\"overall\": 5.0, \"verified\": true, \"reviewTime\": \"01 2, 2015\", \"reviewerID\": \"A1\", "
           "\"asin\": \"B01\", \"reviewText\": \"Great \\\"glue\\\" \\u00e9 \\ud83d\\ude00\", "
           "\"unixReviewTime\": 1420156800, \"vote\": null, \"style\": {\"Size:\": \" 8 oz\"}}\n"
           "{\"overall\": 3, \"reviewerID\": \"A1\", \"asin\": \"B02\", \"unixReviewTime\": 1420156700}\n"
           "\n"
           "{\"overall\": 4e0, \"reviewerID\": \"A2\", \"asin\": \"B01\", \"unixReviewTime\": 1420156800, "
           "\"image\": [\"x\", \"y\"]}\n");
    put("amz", "meta_Tools.json",
        "{\"asin\": \"B01\", \"title\": \"Gorilla Glue &amp; more \\u00e9\", \"brand\": \"Gorilla\", "
        "\"category\": [\"Tools &amp; Home\", \"Glue\"], \"description\": [\"Strong.\", \"  Sticks  \"], "
        "\"price\": \"$5.00\", \"rank\": [], \"also_buy\": []}\n"
        "{\"asin\": \"B02\", \"title\": \"Tape\\ud83d\\ude00\", \"category\": []}\n");
    gr_dataset *d = load("amz", NULL, 1);
    REQUIRE(d);
    CHECK_STR(d->format, "amazon");
    CHECK_EQ_INT(d->n_users, 2);
    CHECK_EQ_INT(d->n_items, 2);
    CHECK_EQ_INT(d->n_inter, 3);
    CHECK(d->has_rating);
    CHECK_STR(seq_of(d, "A1"), "B02 B01");
    int32_t b1 = gr_test_item_of(d, "B01"), b2 = gr_test_item_of(d, "B02");
    CHECK_STR(d->item_title[b1], "Gorilla Glue & more \xc3\xa9");
    CHECK_STR(d->item_brand[b1], "Gorilla");
    CHECK_STR(d->item_genres[b1], "Tools & Home|Glue");
    CHECK_STR(d->item_text[b1], "Strong. Sticks");
    CHECK_STR(d->item_title[b2], "Tape\xf0\x9f\x98\x80");
    CHECK_NEAR(d->inter_rating[d->user_off[gr_test_user_of(d, "A2")]], 4.0, 0);
    gr_dataset_free(d);

    /* the reviews file path: meta_<category>.json is found next to it */
    char p[512];
    snprintf(p, sizeof p, "%s/amz/Tools_5.json.gz", gr_test_tmpdir());
    d = gr_dataset_load(p, NULL);
    REQUIRE(d);
    CHECK_STR(d->item_brand[gr_test_item_of(d, "B01")], "Gorilla");
    gr_dataset_free(d);
}

static void test_csv(void)
{
    put("gen", "interactions.tsv", "user\titem\ttimestamp\trating\nu1\tx\t10\t1\nu1\ty\t5\t2\nu2\tx\t1\t3\n");
    put("gen", "items.csv", "item,title,genres,brand,text\nx,\"Hello, World\",a|b,ACME,\"some &quot;text&quot;\"\ny,Y,,,\n");
    gr_dataset *d = load("gen", NULL, 1);
    REQUIRE(d);
    CHECK_STR(d->format, "csv");
    CHECK_STR(d->name, "gen");
    CHECK_EQ_INT(d->n_inter, 3);
    CHECK_STR(seq_of(d, "u1"), "y x");
    int32_t x = gr_test_item_of(d, "x");
    CHECK_STR(d->item_title[x], "Hello, World");
    CHECK_STR(d->item_genres[x], "a|b");
    CHECK_STR(d->item_brand[x], "ACME");
    CHECK_STR(d->item_text[x], "some \"text\"");
    gr_dataset_free(d);

    /* one file without timestamp or rating: order only */
    const char *f = put("gen2", "clicks.csv", "item,user\n\"a,b\",1\nc,1\nc,2\n");
    d = gr_dataset_load(f, NULL);
    REQUIRE(d);
    CHECK_STR(d->name, "clicks");
    CHECK(!d->has_time && !d->has_rating);
    CHECK_STR(seq_of(d, "1"), "a,b c");
    gr_dataset_free(d);
}

static void test_prepare_opts(void)
{
    /* dedup keeps the first (earliest) occurrence; min_rating; k-core */
    put("prep", "interactions.csv",
        "user,item,timestamp,rating\n"
        "a,1,1,5\na,2,2,5\na,1,3,5\na,3,4,1\n"
        "b,1,1,5\nb,2,2,5\n"
        "c,1,1,5\nc,4,2,5\n");
    gr_dataset *d = load("prep", NULL, 0);
    REQUIRE(d);
    CHECK_EQ_INT(d->n_inter, 8);
    gr_dataset_free(d);
    d = load("prep", NULL, 1);
    REQUIRE(d);
    CHECK_EQ_INT(d->n_inter, 7);
    CHECK_STR(seq_of(d, "a"), "1 2 3");
    CHECK_EQ_INT(d->inter_time[d->user_off[gr_test_user_of(d, "a")] + 1], 2);
    gr_dataset_free(d);

    char p[512];
    snprintf(p, sizeof p, "%s/prep", gr_test_tmpdir());
    gr_load_opts o = gr_load_opts_default();
    o.min_rating = 4;
    o.kcore = 2;
    d = gr_dataset_load(p, &o);
    REQUIRE(d);
    /* rating>=4 drops a-3; 2-core: item 4 (1 user) goes, then c has 1 item and goes;
       then item 1 has a,b (2) and item 2 has a,b (2): stable */
    CHECK_EQ_INT(d->n_users, 2);
    CHECK_EQ_INT(d->n_items, 2);
    CHECK_EQ_INT(d->n_inter, 4);
    CHECK_STR(d->user_key[0], "a");
    CHECK_STR(d->user_key[1], "b");
    CHECK_STR(seq_of(d, "b"), "1 2");
    for (int64_t k = 0; k < d->n_inter; k++) CHECK(d->inter_item[k] >= 0 && d->inter_item[k] < d->n_items);
    gr_dataset_free(d);
}

static void test_cache_roundtrip(void)
{
    gr_dataset *d = load("ml100k", NULL, 1);
    REQUIRE(d);
    char p[512];
    snprintf(p, sizeof p, "%s/ml100k.grds", gr_test_tmpdir());
    CHECK_EQ_INT(gr_dataset_save_cache(d, p), GR_OK);
    gr_dataset *c = gr_dataset_load(p, NULL); /* detected by extension/magic */
    REQUIRE(c);
    CHECK_STR(c->format, "cache");
    CHECK_STR(c->name, d->name);
    CHECK_EQ_INT(c->n_users, d->n_users);
    CHECK_EQ_INT(c->n_items, d->n_items);
    CHECK_EQ_INT(c->n_inter, d->n_inter);
    CHECK_EQ_INT(c->has_time, d->has_time);
    CHECK_EQ_INT(c->has_rating, d->has_rating);
    CHECK(!memcmp(c->user_off, d->user_off, sizeof(int64_t) * ((size_t)d->n_users + 1)));
    CHECK(!memcmp(c->inter_item, d->inter_item, sizeof(int32_t) * (size_t)d->n_inter));
    CHECK(!memcmp(c->inter_time, d->inter_time, sizeof(int64_t) * (size_t)d->n_inter));
    CHECK(!memcmp(c->inter_rating, d->inter_rating, sizeof(float) * (size_t)d->n_inter));
    for (int32_t i = 0; i < d->n_items; i++) {
        CHECK_STR(c->item_key[i], d->item_key[i]);
        CHECK_STR(c->item_title[i], d->item_title[i]);
        CHECK_STR(c->item_genres[i], d->item_genres[i]);
    }
    gr_dataset_free(c);
    gr_dataset_free(d);
}

static void test_summary(void)
{
    gr_dataset *d = load("ml100k", NULL, 1);
    REQUIRE(d);
    char buf[4096] = {0};
    FILE *f = fmemopen(buf, sizeof buf - 1, "w");
    REQUIRE(f);
    gr_dataset_print_summary(d, f);
    fclose(f);
    CHECK_HAS(buf, "2 users, 5 items, 7 interactions");
    CHECK_HAS(buf, "title 3");
    gr_dataset_free(d);
}

int main(void)
{
    GR_RUN(test_ml100k);
    GR_RUN(test_mldat);
    GR_RUN(test_mlcsv);
    GR_RUN(test_recbole);
    GR_RUN(test_recbole_seq);
    GR_RUN(test_amazon);
    GR_RUN(test_csv);
    GR_RUN(test_prepare_opts);
    GR_RUN(test_cache_roundtrip);
    GR_RUN(test_summary);
    return gr_test_finish();
}
