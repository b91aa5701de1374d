/* The synthetic catalogue: genres with three themes each, theme-specific
 * vocabularies, readable titles ("Star Quest II: The Iron Moon (1997)"),
 * studios, franchises of numbered sequels, release years, Zipf-like
 * popularity and latent item vectors. See docs/SYNTH.md. */
#include "synth_internal.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

#define NOUNS 10
#define ADJS 5

/* Partner lists name genres by index: 0 Action, 1 Adventure, 2 Animation,
 * 3 Comedy, 4 Crime, 5 Documentary, 6 Drama, 7 Fantasy, 8 Horror,
 * 9 Romance, 10 Sci-Fi, 11 Thriller. */
const synth_genre_info synth_genres[GR_SYNTH_MAX_GENRES] = {
    {"Action", 0.9, 1.6, {1, 11, 10, 4, -1}},
    {"Adventure", 0.6, 1.3, {0, 7, 2, 3, -1}},
    {"Animation", 0.35, 1.4, {3, 1, 7, -1, -1}},
    {"Comedy", 1.1, 0.8, {9, 6, 2, 4, -1}},
    {"Crime", 0.55, 0.7, {11, 6, 0, 3, -1}},
    {"Documentary", 0.2, 0.1, {6, -1, -1, -1, -1}},
    {"Drama", 1.3, 0.3, {9, 4, 3, 11, -1}},
    {"Fantasy", 0.4, 1.5, {1, 2, 8, 9, -1}},
    {"Horror", 0.45, 1.6, {11, 10, 3, 7, -1}},
    {"Romance", 0.7, 0.4, {6, 3, -1, -1, -1}},
    {"Sci-Fi", 0.55, 1.6, {0, 11, 1, 8, -1}},
    {"Thriller", 0.8, 0.8, {4, 0, 6, 8, -1}},
};

/* Theme vocabularies: [genre * 3 + theme]. */
static const char *const theme_nouns[GR_SYNTH_MAX_GENRES * 3][NOUNS] = {
    /* Action: missions, speed, martial arts */
    {"Strike", "Mission", "Squad", "Commando", "Fortress", "Target", "Frontline", "Bullet", "Protocol", "Operation"},
    {"Speed", "Highway", "Engine", "Turbo", "Pursuit", "Drift", "Velocity", "Asphalt", "Getaway", "Chase"},
    {"Fist", "Dragon", "Tiger", "Vengeance", "Warrior", "Blade", "Dojo", "Fury", "Kick", "Master"},
    /* Adventure: treasure, the sea, the wild */
    {"Treasure", "Jungle", "Temple", "Idol", "Expedition", "Map", "Relic", "Raider", "Canyon", "Pyramid"},
    {"Pirate", "Island", "Ocean", "Voyage", "Captain", "Tide", "Harbor", "Compass", "Galleon", "Reef"},
    {"Mountain", "Summit", "Wilderness", "Trail", "Glacier", "River", "Valley", "Frontier", "Peak", "Journey"},
    /* Animation: animals, toys, fairy tales */
    {"Bunny", "Panda", "Penguin", "Kitten", "Puppy", "Fox", "Owl", "Squirrel", "Duckling", "Bear"},
    {"Toy", "Robot", "Balloon", "Rocket", "Marble", "Puppet", "Gizmo", "Crayon", "Yo-Yo", "Train"},
    {"Princess", "Castle", "Fairy", "Unicorn", "Kingdom", "Wish", "Snowflake", "Lantern", "Mermaid", "Slipper"},
    /* Comedy: parties, families, offices */
    {"Party", "Weekend", "Roommate", "Frat", "Prom", "Keg", "Dorm", "Hangover", "Bash", "Road Trip"},
    {"Wedding", "Family", "Vacation", "Mother-in-Law", "Holiday", "Neighbor", "Babysitter", "Reunion", "Dad", "Honeymoon"},
    {"Office", "Boss", "Intern", "Meeting", "Paycheck", "Cubicle", "Promotion", "Deadline", "Memo", "Coffee"},
    /* Crime: the mob, heists, detectives */
    {"Mob", "Godfather", "Racket", "Don", "Syndicate", "Cartel", "Empire", "Capo", "Omerta", "Consigliere"},
    {"Heist", "Vault", "Diamond", "Job", "Safecracker", "Score", "Casino", "Jewel", "Alibi", "Crew"},
    {"Detective", "Precinct", "Badge", "Homicide", "Alley", "Informant", "Cop", "Case", "Street", "Stakeout"},
    /* Documentary: nature, history, artists */
    {"Planet", "Wildlife", "Forest", "Coral", "Migration", "Savanna", "Species", "Earth", "Climate", "Rainforest"},
    {"History", "Revolution", "Century", "Archive", "Battle", "Memory", "Nation", "Chronicle", "Dynasty", "Era"},
    {"Portrait", "Musician", "Tour", "Canvas", "Legend", "Voice", "Artist", "Rhythm", "Stage", "Sessions"},
    /* Drama: small towns, courtrooms, war */
    {"Home", "Daughter", "Father", "Farm", "Town", "Harvest", "Porch", "Brother", "Sister", "Inheritance"},
    {"Verdict", "Trial", "Senator", "Justice", "Jury", "Testimony", "Conscience", "Appeal", "Oath", "Ballot"},
    {"Soldier", "Trenches", "Letters", "Homefront", "Regiment", "Medal", "Sacrifice", "Valor", "Battlefield", "Dawn"},
    /* Fantasy: swords, wizards, the fae */
    {"Sword", "Throne", "Knight", "Crown", "Realm", "Quest", "Shield", "Prophecy", "Warlord", "Citadel"},
    {"Wizard", "Spell", "Wand", "Sorcerer", "Amulet", "Tower", "Scroll", "Potion", "Rune", "Grimoire"},
    {"Grove", "Fae", "Spirit", "Moonstone", "Willow", "Faun", "Hollow", "Thorn", "Mist", "Changeling"},
    /* Horror: hauntings, slashers, creatures */
    {"Haunting", "Ghost", "Manor", "Attic", "Curse", "Seance", "Poltergeist", "Graveyard", "Crypt", "Shadow"},
    {"Slasher", "Cabin", "Camp", "Mask", "Chainsaw", "Scream", "Blood", "Knife", "Massacre", "Butcher"},
    {"Werewolf", "Vampire", "Zombie", "Creature", "Swamp", "Fang", "Beast", "Hive", "Parasite", "Ghoul"},
    /* Romance: love letters, summers abroad, ballrooms */
    {"Love", "Heart", "Kiss", "Promise", "Valentine", "Sweetheart", "Romance", "Rose", "Letter", "Embrace"},
    {"Summer", "Paris", "Beach", "Sunset", "Vineyard", "Postcard", "Tango", "Riviera", "Gondola", "Villa"},
    {"Duchess", "Ballroom", "Suitor", "Governess", "Waltz", "Estate", "Heiress", "Bride", "Season", "Courtship"},
    /* Sci-Fi: space, machines, time */
    {"Star", "Galaxy", "Orbit", "Nebula", "Planet", "Comet", "Voyager", "Moon", "Station", "Quest"},
    {"Android", "Machine", "Circuit", "Cyborg", "Algorithm", "Network", "Code", "Drone", "Mind", "Matrix"},
    {"Time", "Paradox", "Dimension", "Portal", "Rift", "Loop", "Continuum", "Future", "Echo", "Horizon"},
    /* Thriller: spies, the mind, conspiracies */
    {"Spy", "Agent", "Cipher", "Dossier", "Embassy", "Double", "Handler", "Codename", "Defector", "Asset"},
    {"Obsession", "Stranger", "Mirror", "Insomnia", "Nightmare", "Secret", "Fear", "Whisper", "Stalker", "Trance"},
    {"Conspiracy", "Cover-Up", "Signal", "Witness", "Leak", "Surveillance", "Hostage", "Countdown", "Ransom", "Blackout"},
};

static const char *const theme_adjs[GR_SYNTH_MAX_GENRES * 3][ADJS] = {
    {"Lethal", "Tactical", "Maximum", "Rapid", "Deadly"},
    {"Fast", "Furious", "Burning", "Overdrive", "Redline"},
    {"Iron", "Savage", "Silent", "Fearless", "Shaolin"},
    {"Hidden", "Ancient", "Lost", "Forbidden", "Golden"},
    {"Stormy", "Endless", "Salty", "Crimson", "Seven"},
    {"Frozen", "Untamed", "High", "Distant", "Northern"},
    {"Fluffy", "Tiny", "Happy", "Brave", "Silly"},
    {"Bouncy", "Shiny", "Wind-Up", "Little", "Magic"},
    {"Enchanted", "Sparkling", "Sleepy", "Royal", "Twinkling"},
    {"Crazy", "Wild", "Outrageous", "Awkward", "Epic"},
    {"Perfect", "Big", "Nutty", "Clumsy", "Merry"},
    {"Accidental", "Unpaid", "Ridiculous", "Corporate", "Dumb"},
    {"Made", "Sicilian", "Loyal", "Bloody", "Brooklyn"},
    {"Clean", "Inside", "Slick", "Perfect", "Big"},
    {"Dirty", "Hard-Boiled", "Rainy", "Crooked", "Undercover"},
    {"Living", "Blue", "Fragile", "Natural", "Wild"},
    {"Forgotten", "Untold", "True", "Secret", "Silent"},
    {"Inside", "Real", "Unfiltered", "Raw", "Living"},
    {"Quiet", "Little", "Long", "Simple", "Southern"},
    {"Reasonable", "Honest", "Final", "Public", "Sworn"},
    {"Fallen", "Distant", "Brave", "Broken", "Last"},
    {"Elven", "Dark", "High", "Ancient", "Iron"},
    {"Arcane", "Enchanted", "Mystic", "Crystal", "Emerald"},
    {"Silver", "Whispering", "Twilight", "Wild", "Hidden"},
    {"Haunted", "Cursed", "Sinister", "Restless", "Hollow"},
    {"Bloody", "Gory", "Twisted", "Midnight", "Rabid"},
    {"Undead", "Hungry", "Mutant", "Feral", "Rotting"},
    {"Tender", "Sweet", "Eternal", "Secret", "True"},
    {"Sunny", "Golden", "Endless", "Tuscan", "Breezy"},
    {"Proper", "Noble", "Scandalous", "Elegant", "Regal"},
    {"Stellar", "Cosmic", "Lunar", "Distant", "Iron"},
    {"Synthetic", "Digital", "Electric", "Chrome", "Neural"},
    {"Quantum", "Parallel", "Temporal", "Infinite", "Broken"},
    {"Covert", "Classified", "Rogue", "Foreign", "Silent"},
    {"Twisted", "Dark", "Fractured", "Perfect", "Sleepless"},
    {"Total", "Hidden", "Final", "Zero", "Critical"},
};

static const char *const generic_nouns[] = {
    "Night", "Day", "Road", "House", "Dream", "Game", "Story", "World", "City", "Winter",
    "Life", "Hour", "Sky", "Fire", "Rain", "Line", "Room", "Edge", "Light", "Return",
};
static const char *const generic_adjs[] = {
    "Last", "Lost", "Little", "Great", "First", "Long", "Late", "Other", "Second", "Lonely",
    "Bright", "Strange", "Red", "Blue", "Black", "White",
};
static const char *const first_names[] = {
    "Jack", "Emma", "Max", "Lucy", "Sam", "Nora", "Leo", "Ruby", "Frank", "Alice",
    "Oscar", "Mia", "Henry", "Grace", "Billy", "Rosa", "Victor", "Ivy", "Walter", "Clara",
    "Felix", "Hazel", "Eddie", "June", "Gus", "Stella", "Otto", "Daisy", "Ray", "Iris",
};
static const char *const prefixes[] = {
    "Return of", "Rise of", "Beyond", "Escape from", "Night of", "Curse of",
    "Secret of", "Legend of", "Attack of", "Revenge of", "Dawn of", "Shadow of",
};
static const char *const studio_first[] = {
    "Silverline", "Redwood", "Blue Harbor", "Northstar", "Golden Gate", "Ironbridge", "Maple Leaf",
    "Crescent", "Lighthouse", "Old Mill", "Paper Moon", "Red Fox", "Starling", "Westwind",
    "Black Lantern", "Harborview", "Kingsley", "Orchard", "Granite", "Skylark", "Emerald Bay",
    "Copperhead", "Firefly", "Riverbend", "Windmill", "Half Moon", "Blackbird", "Sunrise",
    "Cobalt", "Whitestone", "Bluebell", "Thunder Road", "Juniper", "Ravenwood", "Highland",
    "Brightwater", "Amberlight", "Tall Pine", "Nightingale", "Lantern Hill",
};
static const char *const studio_suffix[] = {
    "Pictures", "Studios", "Films", "Entertainment", "Productions", "Cinema", "Media", "Features",
};
static const char *const roman[] = {"", "I", "II", "III", "IV", "V", "VI", "VII", "VIII", "IX", "X"};

#define NELEM(a) ((int)(sizeof(a) / sizeof((a)[0])))
#define MAX_PARTS 7
#define TITLE_MAX 256

/* ---- small helpers ------------------------------------------------------------ */

static int pick(gr_rng *r, int n) { return (int)gr_rng_below(r, (uint64_t)n); }

/* Index drawn with probability proportional to wt[0..n). */
static int pick_weighted(gr_rng *r, const double *wt, int n)
{
    double tot = 0;
    for (int i = 0; i < n; i++) tot += wt[i];
    double x = gr_rng_double(r) * tot;
    for (int i = 0; i < n; i++) {
        x -= wt[i];
        if (x < 0) return i;
    }
    for (int i = n - 1; i >= 0; i--)
        if (wt[i] > 0) return i;
    return 0;
}

int synth_year_of(int64_t t)
{
    /* days since 1970-01-01 -> civil year (Howard Hinnant's algorithm) */
    int64_t z = (t >= 0 ? t / 86400 : (t - 86399) / 86400) + 719468;
    int64_t era = (z >= 0 ? z : z - 146096) / 146097;
    int64_t doe = z - era * 146097;
    int64_t yoe = (doe - doe / 1460 + doe / 36524 - doe / 146096) / 365;
    int64_t y = yoe + era * 400;
    int64_t doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    int64_t mp = (5 * doy + 2) / 153;
    int64_t m = mp < 10 ? mp + 3 : mp - 9;
    return (int)(y + (m <= 2));
}

/* A set of 64-bit title hashes (open addressing; 0 marks an empty slot). */
typedef struct hset { uint64_t *slot; size_t cap, n; } hset;

static uint64_t hash_str(const char *s)
{
    uint64_t h = 1469598103934665603ULL; /* FNV-1a, then a final mix */
    for (; *s; s++) h = (h ^ (unsigned char)*s) * 1099511628211ULL;
    h ^= h >> 33;
    h *= 0xff51afd7ed558ccdULL;
    h ^= h >> 33;
    return h ? h : 1;
}

static int hset_init(hset *s, size_t expect)
{
    s->cap = 64;
    while (s->cap < expect * 2 + 16) s->cap <<= 1;
    s->n = 0;
    s->slot = gr_calloc(s->cap, sizeof *s->slot);
    return s->slot ? GR_OK : GR_ERR;
}

/* 1 if h is present; else inserts it and returns 0 (the table never fills:
 * it is sized for twice the number of inserts). */
static int hset_test_add(hset *s, uint64_t h)
{
    size_t m = s->cap - 1, i = (size_t)h & m;
    while (s->slot[i]) {
        if (s->slot[i] == h) return 1;
        i = (i + 1) & m;
    }
    s->slot[i] = h;
    s->n++;
    return 0;
}

/* ---- titles --------------------------------------------------------------------- */

/* Context for drawing title words of one item. */
typedef struct wordctx {
    gr_rng *r;
    int genre, theme;   /* theme is global: genre * 3 + t */
    int second;         /* a secondary genre or -1 */
} wordctx;

static const char *word(const wordctx *c, int adj)
{
    double x = gr_rng_double(c->r);
    int th = c->theme;
    if (x < 0.68) {
        /* the item's own theme */
    } else if (x < 0.78) {
        th = c->genre * 3 + (c->theme % 3 + 1 + pick(c->r, 2)) % 3;
    } else if (x < 0.86 && c->second >= 0) {
        th = c->second * 3 + pick(c->r, 3);
    } else {
        return adj ? generic_adjs[pick(c->r, NELEM(generic_adjs))]
                   : generic_nouns[pick(c->r, NELEM(generic_nouns))];
    }
    return adj ? theme_adjs[th][pick(c->r, ADJS)] : theme_nouns[th][pick(c->r, NOUNS)];
}

static const char *noun(const wordctx *c) { return word(c, 0); }
static const char *adj(const wordctx *c) { return word(c, 1); }
static const char *name(const wordctx *c) { return first_names[pick(c->r, NELEM(first_names))]; }

/* A second noun different from a. */
static const char *noun2(const wordctx *c, const char *a)
{
    const char *b = noun(c);
    for (int k = 0; k < 4 && !strcmp(a, b); k++) b = noun(c);
    return b;
}

/* Templates of standalone titles, with relative weights. */
enum { T_THE_AN, T_AN, T_N_OF_AN, T_PREFIX_N, T_NAMES_N, T_N_IN_N, T_NN, T_THE_N, T_N_AND_N,
       T_N_OF_NAME, T_NAME_NAME_N, T_QUOTED, T_N_N_N, T_N_FOR_NAME, T_PREFIX_AN, T_COUNT };
static const double template_weight[T_COUNT] = {14, 12, 10, 10, 6, 7, 9, 3, 5, 4, 2, 1, 2, 3, 6};

/* Write a title built with template t into buf (no year). */
static void title_from_template(const wordctx *c, int t, char *buf, size_t n)
{
    const char *a, *b;
    switch (t) {
    case T_THE_AN: snprintf(buf, n, "The %s %s", adj(c), noun(c)); break;
    case T_AN: snprintf(buf, n, "%s %s", adj(c), noun(c)); break;
    case T_N_OF_AN: a = noun(c); snprintf(buf, n, "%s of the %s %s", a, adj(c), noun2(c, a)); break;
    case T_PREFIX_N: snprintf(buf, n, "%s the %s", prefixes[pick(c->r, NELEM(prefixes))], noun(c)); break;
    case T_NAMES_N: snprintf(buf, n, "%s's %s", name(c), noun(c)); break;
    case T_N_IN_N: a = noun(c); snprintf(buf, n, "%s in the %s", a, noun2(c, a)); break;
    case T_NN: a = noun(c); snprintf(buf, n, "%s %s", a, noun2(c, a)); break;
    case T_THE_N: snprintf(buf, n, "The %s", noun(c)); break;
    case T_N_AND_N: a = noun(c); snprintf(buf, n, "%s and %s", a, noun2(c, a)); break;
    case T_N_OF_NAME: snprintf(buf, n, "The %s of %s", noun(c), name(c)); break;
    case T_NAME_NAME_N:
        a = name(c);
        b = name(c);
        for (int k = 0; k < 8 && !strcmp(a, b); k++) b = name(c);
        snprintf(buf, n, "%s, %s and the %s", a, b, noun(c));
        break;
    case T_QUOTED: snprintf(buf, n, "The \"%s\" %s", adj(c), noun(c)); break;
    case T_N_N_N:
        a = noun(c); b = noun2(c, a);
        snprintf(buf, n, "%s, %s and %s", a, b, noun2(c, b));
        break;
    case T_N_FOR_NAME: snprintf(buf, n, "A %s for %s", noun(c), name(c)); break;
    default: snprintf(buf, n, "%s the %s %s", prefixes[pick(c->r, NELEM(prefixes))], adj(c), noun(c)); break;
    }
}

static void standalone_title(const wordctx *c, char *buf, size_t n)
{
    title_from_template(c, pick_weighted(c->r, template_weight, T_COUNT), buf, n);
}

/* A franchise's base name ("Star Quest"). */
static void franchise_base(const wordctx *c, char *buf, size_t n)
{
    static const int t[] = {T_NN, T_NN, T_NN, T_AN, T_AN, T_THE_AN, T_NAMES_N, T_THE_N};
    title_from_template(c, t[pick(c->r, NELEM(t))], buf, n);
}

/* Title of part k (1-based) of a franchise: roman style
 * "Base II: The Iron Moon" or numbered style "Base 2". */
static void sequel_title(const wordctx *c, const char *base, int k, int numbered, char *buf, size_t n)
{
    int len; /* titles are far shorter than TITLE_MAX; snprintf truncates safely */
    if (k == 1) len = snprintf(buf, n, "%s", base);
    else if (numbered) len = snprintf(buf, n, "%s %d", base, k);
    else {
        static const int t[] = {T_THE_AN, T_THE_AN, T_N_OF_AN, T_PREFIX_N, T_AN, T_PREFIX_AN};
        char sub[TITLE_MAX];
        title_from_template(c, t[pick(c->r, NELEM(t))], sub, sizeof sub);
        len = snprintf(buf, n, "%s %s: %s", base, roman[k], sub);
    }
    if (len < 0) buf[0] = '\0';
}

/* ---- catalogue ------------------------------------------------------------------ */

static void random_unit(gr_rng *r, float *v, int d)
{
    double s = 0;
    for (int j = 0; j < d; j++) { v[j] = (float)gr_rng_normal(r); s += (double)v[j] * v[j]; }
    s = s > 0 ? 1.0 / sqrt(s) : 1.0;
    for (int j = 0; j < d; j++) v[j] = (float)(v[j] * s);
}

static void perturbed_unit(gr_rng *r, const float *base, float *v, int d, double noise)
{
    double s = 0, sd = noise / sqrt((double)d);
    for (int j = 0; j < d; j++) { v[j] = (float)(base[j] + sd * gr_rng_normal(r)); s += (double)v[j] * v[j]; }
    s = s > 0 ? 1.0 / sqrt(s) : 1.0;
    for (int j = 0; j < d; j++) v[j] = (float)(v[j] * s);
}

/* Secondary genres of an item with primary genre g: a mask of 0-2 partners. */
static uint32_t secondary_genres(gr_rng *r, int g, int n_genres)
{
    int cand[5], nc = 0;
    for (int k = 0; k < 5 && synth_genres[g].partners[k] >= 0; k++)
        if (synth_genres[g].partners[k] < n_genres) cand[nc++] = synth_genres[g].partners[k];
    double x = gr_rng_double(r);
    int want = x < 0.4 ? 0 : x < 0.8 ? 1 : 2;
    uint32_t mask = 0;
    for (int k = 0; k < want && nc > 0; k++) {
        int j = pick(r, nc);
        mask |= 1u << cand[j];
        cand[j] = cand[--nc];
    }
    return mask;
}

static char *genre_string(const gr_synth_world *w, int g, uint32_t mask)
{
    char buf[256];
    size_t len = (size_t)snprintf(buf, sizeof buf, "%s", w->genre_name[g]);
    for (int k = 0; k < w->n_genres; k++)
        if (k != g && (mask >> k & 1) && len < sizeof buf)
            len += (size_t)snprintf(buf + len, sizeof buf - len, "|%s", w->genre_name[k]);
    return gr_strdup(buf);
}

/* Studios: distinct "First Suffix" names, each specialised in 1-2 genres. */
static int build_studios(gr_synth_world *w, gr_rng *r, int32_t **spec_off_out, int32_t **spec_list_out)
{
    int nf = NELEM(studio_first), ns = NELEM(studio_suffix);
    int32_t *combo = gr_alloc((size_t)(nf * ns), sizeof *combo);
    w->studio_name = gr_calloc((size_t)w->n_studios, sizeof *w->studio_name);
    int32_t *spec = gr_alloc((size_t)w->n_studios * 2, sizeof *spec);
    int32_t *spec_off = gr_calloc((size_t)w->n_genres + 1, sizeof *spec_off);
    int32_t *spec_list = gr_alloc((size_t)w->n_studios * 2, sizeof *spec_list);
    if (!combo || !w->studio_name || !spec || !spec_off || !spec_list) goto fail;
    for (int i = 0; i < nf * ns; i++) combo[i] = i;
    gr_rng_shuffle_i32(r, combo, nf * ns);
    double prior[GR_SYNTH_MAX_GENRES];
    for (int g = 0; g < w->n_genres; g++) prior[g] = synth_genres[g].prior;
    for (int s = 0; s < w->n_studios; s++) {
        char buf[96];
        snprintf(buf, sizeof buf, "%s %s", studio_first[combo[s] / ns], studio_suffix[combo[s] % ns]);
        if (!(w->studio_name[s] = gr_strdup(buf))) goto fail;
        spec[2 * s] = pick_weighted(r, prior, w->n_genres);
        spec[2 * s + 1] = gr_rng_double(r) < 0.5 ? pick_weighted(r, prior, w->n_genres) : spec[2 * s];
    }
    for (int s = 0; s < w->n_studios; s++) {
        spec_off[spec[2 * s] + 1]++;
        if (spec[2 * s + 1] != spec[2 * s]) spec_off[spec[2 * s + 1] + 1]++;
    }
    for (int g = 0; g < w->n_genres; g++) spec_off[g + 1] += spec_off[g];
    int32_t fill[GR_SYNTH_MAX_GENRES];
    memcpy(fill, spec_off, sizeof(int32_t) * (size_t)w->n_genres);
    for (int s = 0; s < w->n_studios; s++) {
        spec_list[fill[spec[2 * s]]++] = s;
        if (spec[2 * s + 1] != spec[2 * s]) spec_list[fill[spec[2 * s + 1]]++] = s;
    }
    gr_free(combo);
    gr_free(spec);
    *spec_off_out = spec_off;
    *spec_list_out = spec_list;
    return GR_OK;
fail:
    gr_free(combo);
    gr_free(spec);
    gr_free(spec_off);
    gr_free(spec_list);
    return GR_ERR;
}

static int pick_studio(gr_rng *r, const gr_synth_world *w, int g, const int32_t *spec_off, const int32_t *spec_list)
{
    int n = spec_off[g + 1] - spec_off[g];
    if (n > 0 && gr_rng_double(r) < 0.75) return spec_list[spec_off[g] + pick(r, n)];
    return pick(r, w->n_studios);
}

int synth_build_catalog(gr_synth_world *w, gr_rng *rng)
{
    const gr_synth_opts *o = &w->opts;
    const int32_t n = w->n_items, ng = w->n_genres, d = w->dim;
    int rc = GR_ERR;
    int32_t *slot = NULL, *spec_off = NULL, *spec_list = NULL;
    double *raw = NULL, *studio_q = NULL, *theme_sum = NULL;
    hset titles = {0}, bases = {0};
    char buf[TITLE_MAX], full[TITLE_MAX + 16], base[TITLE_MAX];

    w->genre_name = gr_calloc((size_t)ng, sizeof *w->genre_name);
    if (!w->genre_name) return GR_ERR;
    for (int g = 0; g < ng; g++)
        if (!(w->genre_name[g] = gr_strdup(synth_genres[g].name))) return GR_ERR;
    if (build_studios(w, rng, &spec_off, &spec_list)) return GR_ERR;

    /* Creation order c = 0..n-1 (franchises first) lands on item id slot[c]. */
    slot = gr_alloc((size_t)n, sizeof *slot);
    raw = gr_alloc((size_t)n, sizeof *raw);
    studio_q = gr_alloc((size_t)w->n_studios, sizeof *studio_q);
    theme_sum = gr_calloc((size_t)w->n_themes, sizeof *theme_sum);
    if (!slot || !raw || !studio_q || !theme_sum) goto done;
    if (hset_init(&titles, (size_t)n) || hset_init(&bases, (size_t)n / 2 + 1)) goto done;
    for (int32_t i = 0; i < n; i++) slot[i] = i;
    gr_rng_shuffle_i32(rng, slot, n);
    for (int s = 0; s < w->n_studios; s++) studio_q[s] = 0.4 * gr_rng_normal(rng);

    /* Zipf popularity by a random rank; sequels inherit a decayed share below. */
    int32_t *rank = gr_alloc((size_t)n, sizeof *rank);
    if (!rank) goto done;
    for (int32_t i = 0; i < n; i++) rank[i] = i;
    gr_rng_shuffle_i32(rng, rank, n);
    for (int32_t i = 0; i < n; i++) raw[i] = pow((double)rank[i] + 1.0, -o->zipf);
    gr_free(rank);

    int max_year = synth_year_of(o->t_start) - 1, min_year = max_year - 80;
    double gprior[GR_SYNTH_MAX_GENRES], fprior[GR_SYNTH_MAX_GENRES];
    for (int g = 0; g < ng; g++) {
        gprior[g] = synth_genres[g].prior;
        fprior[g] = synth_genres[g].prior * synth_genres[g].franchise;
    }

    int32_t c = 0, target_fr = (int32_t)(o->franchise_frac * n);
    w->n_franchises = 0;
    while (c < n) {
        int in_fr = c < target_fr;
        int parts = 1;
        if (in_fr) {
            parts = 2;
            while (parts < MAX_PARTS && gr_rng_double(rng) < 0.45) parts++;
            if (parts > n - c) parts = n - c;
            if (parts < 2) in_fr = 0, parts = 1;
        }
        int g = in_fr ? pick_weighted(rng, fprior, ng) : pick_weighted(rng, gprior, ng);
        int th = g * 3 + pick(rng, 3);
        uint32_t mask = secondary_genres(rng, g, ng);
        int second = -1;
        for (int k = 0; k < ng; k++)
            if (mask >> k & 1) { second = k; break; }
        int studio = pick_studio(rng, w, g, spec_off, spec_list);
        wordctx wc = {rng, g, th, second};
        int years[MAX_PARTS];
        years[parts - 1] = max_year - (int)floor(-(in_fr ? 7.0 : 10.0) * log(1.0 - gr_rng_double(rng)));
        for (int k = parts - 2; k >= 0; k--) years[k] = years[k + 1] - 1 - pick(rng, 4);
        for (int k = 0; k < parts; k++) {
            if (years[k] < min_year) years[k] = min_year;
            if (k > 0 && years[k] < years[k - 1]) years[k] = years[k - 1];
        }
        int numbered = gr_rng_double(rng) < 0.3;
        if (in_fr) {
            for (int tries = 0; tries < 32; tries++) {
                franchise_base(&wc, base, sizeof base);
                if (!hset_test_add(&bases, hash_str(base))) break;
            }
        }
        int32_t first = slot[c];
        for (int k = 0; k < parts; k++, c++) {
            int32_t id = slot[c];
            for (int tries = 0;; tries++) {
                if (in_fr) sequel_title(&wc, base, k + 1, numbered && tries == 0, buf, sizeof buf);
                else standalone_title(&wc, buf, sizeof buf);
                snprintf(full, sizeof full, "%s (%d)", buf, years[k]);
                /* a repeated "Title (Year)" is kept only with chance dup_title_rate */
                if (!hset_test_add(&titles, hash_str(full)) || tries >= 40 || gr_rng_double(rng) < o->dup_title_rate) break;
            }
            if (!(w->item_title[id] = gr_strdup(full))) goto done;
            if (!(w->item_genres[id] = genre_string(w, g, mask))) goto done;
            w->item_genre[id] = g;
            w->item_theme[id] = th;
            w->item_genre_mask[id] = mask | 1u << g;
            w->item_studio[id] = studio;
            w->item_franchise[id] = in_fr ? w->n_franchises : -1;
            w->item_part[id] = in_fr ? k + 1 : 0;
            w->item_prev[id] = in_fr && k > 0 ? slot[c - 1] : -1;
            w->item_next[id] = in_fr && k + 1 < parts ? slot[c + 1] : -1;
            w->item_year[id] = years[k];
            double era = (years[k] - (max_year - 20)) / 20.0;
            w->item_era[id] = (float)(era < -1 ? -1 : era > 1 ? 1 : era);
            float *v = w->item_vec + (size_t)id * d;
            if (in_fr && k > 0) {
                perturbed_unit(rng, w->item_vec + (size_t)first * d, v, d, 0.4);
                raw[id] = raw[first] * pow(0.6, k) * exp(0.2 * gr_rng_normal(rng));
            } else {
                random_unit(rng, v, d);
                raw[id] *= exp(studio_q[studio]);
            }
        }
        if (in_fr) w->n_franchises++;
    }

    for (int32_t i = 0; i < n; i++) theme_sum[w->item_theme[i]] += raw[i];
    for (int32_t i = 0; i < n; i++) w->item_pop[i] = (float)(raw[i] / theme_sum[w->item_theme[i]]);
    rc = synth_build_index(w);
done:
    gr_free(slot);
    gr_free(raw);
    gr_free(studio_q);
    gr_free(theme_sum);
    gr_free(spec_off);
    gr_free(spec_list);
    gr_free(titles.slot);
    gr_free(bases.slot);
    return rc;
}

int synth_build_index(gr_synth_world *w)
{
    const int64_t n = w->n_items;
    gr_free(w->item_popq);
    gr_free(w->theme_off);
    gr_free(w->theme_item);
    gr_free(w->item_tpos);
    gr_free(w->theme_cdf);
    gr_free(w->fen_base);
    w->item_popq = gr_alloc((size_t)n, sizeof *w->item_popq);
    w->theme_off = gr_calloc((size_t)w->n_themes + 1, sizeof *w->theme_off);
    w->theme_item = gr_alloc((size_t)n, sizeof *w->theme_item);
    w->item_tpos = gr_alloc((size_t)n, sizeof *w->item_tpos);
    w->theme_cdf = gr_alloc((size_t)n, sizeof *w->theme_cdf);
    w->fen_base = gr_calloc((size_t)n, sizeof *w->fen_base);
    if (!w->item_popq || !w->theme_off || !w->theme_item || !w->item_tpos || !w->theme_cdf || !w->fen_base)
        return GR_ERR;
    for (int64_t i = 0; i < n; i++) {
        double q = nearbyint((double)w->item_pop[i] * 0x1p40);
        w->item_popq[i] = q < 1 ? 1 : q > 0x1p41 ? (uint64_t)1 << 41 : (uint64_t)q;
        w->theme_off[w->item_theme[i] + 1]++;
    }
    for (int t = 0; t < w->n_themes; t++) w->theme_off[t + 1] += w->theme_off[t];
    int64_t *fill = gr_alloc((size_t)w->n_themes, sizeof *fill);
    if (!fill) return GR_ERR;
    memcpy(fill, w->theme_off, sizeof(int64_t) * (size_t)w->n_themes);
    for (int64_t i = 0; i < n; i++) {
        int64_t pos = fill[w->item_theme[i]]++;
        w->theme_item[pos] = (int32_t)i;
        w->item_tpos[i] = pos;
    }
    gr_free(fill);
    for (int t = 0; t < w->n_themes; t++) {
        double acc = 0;
        for (int64_t j = w->theme_off[t]; j < w->theme_off[t + 1]; j++) {
            acc += (double)w->item_popq[w->theme_item[j]];
            w->theme_cdf[j] = acc;
        }
    }
    /* one Fenwick tree per theme: theme t's node j (1-based) is
     * fen_base[theme_off[t] + j - 1]; built in O(n) */
    for (int t = 0; t < w->n_themes; t++) {
        uint64_t *f = w->fen_base + w->theme_off[t];
        int64_t nt = w->theme_off[t + 1] - w->theme_off[t];
        for (int64_t j = 1; j <= nt; j++) f[j - 1] = w->item_popq[w->theme_item[w->theme_off[t] + j - 1]];
        for (int64_t j = 1; j <= nt; j++) {
            int64_t k = j + (j & -j);
            if (k <= nt) f[k - 1] += f[j - 1];
        }
    }
    return GR_OK;
}
