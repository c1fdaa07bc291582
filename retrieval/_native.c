/* The indexer's per-character and per-token loops, its postings' grouping and gap coding, a
 * query's scoring loop and a scan's directory listing, in C.
 *
 * Each function here does exactly what a Python function in retrieval/tokenizer.py,
 * retrieval/phrases.py, retrieval/markup.py, retrieval/analyze.py, retrieval/postings.py, retrieval/gaps.py,
 * retrieval/index.py or retrieval/scan.py does (the Python is the
 * reference; the tests hold the two to each other, with Hypothesis). Python spends most of a
 * build's time in these loops: about 40 % of a worker's time on a 1.4 KB post. Every table
 * comes from Python, so no Unicode knowledge lives here: a character is looked up, never
 * classified. Scores are computed in the reference's order of operations, in doubles, and
 * setup.py turns off contraction into fused multiply-adds: every score equals the reference's.
 *
 * The extension is optional: retrieval/native.py falls back to the Python when it was not
 * built (no C compiler when the package was installed). will_need and stat_tree, the two
 * functions here with no Python twin, only warm the kernel's caches: without them a worker
 * reads no file ahead and a full scan stats nothing ahead.
 */
#define PY_SSIZE_T_CLEAN
#include <Python.h>
#include <limits.h>
#include <stdint.h>
#include <string.h>
#if defined(__unix__) || defined(__APPLE__)
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>
#define HAVE_POSIX_FILES 1
#endif

#define BMP 0x10000
/* In the normalize table: a character whose normalization depends on its neighbours. */
#define DEPENDS 0
#define SPACE 0x20

/* A text, its character table (at least BMP uint32 code points: a NumPy array or any buffer)
 * and an output buffer as long as the text, taken by begin() and given back by end(). */
typedef struct {
    Py_buffer view;
    const uint32_t *table;
    Py_ssize_t n;
    int kind;
    const void *data;
    Py_UCS4 *out;
} Job;

static int
begin(Job *job, PyObject *const *args, Py_ssize_t nargs, const char *name)
{
    if (nargs != 2) {
        PyErr_Format(PyExc_TypeError, "%s() takes a text and a table", name);
        return -1;
    }
    if (!PyUnicode_Check(args[0])) {
        PyErr_Format(PyExc_TypeError, "%s() needs a str", name);
        return -1;
    }
    if (PyObject_GetBuffer(args[1], &job->view, PyBUF_SIMPLE) < 0)
        return -1;
    if (job->view.len < (Py_ssize_t)(BMP * sizeof(uint32_t))) {
        PyBuffer_Release(&job->view);
        PyErr_SetString(PyExc_ValueError, "a character table needs 65536 uint32 entries");
        return -1;
    }
    job->table = (const uint32_t *)job->view.buf;
    job->n = PyUnicode_GET_LENGTH(args[0]);
    job->kind = PyUnicode_KIND(args[0]);
    job->data = PyUnicode_DATA(args[0]);
    job->out = PyMem_Malloc((job->n ? job->n : 1) * sizeof(Py_UCS4));
    if (job->out == NULL) {
        PyBuffer_Release(&job->view);
        PyErr_NoMemory();
        return -1;
    }
    return 0;
}

/* The first ``length`` characters written, as a str (None: the job's result is ``result``). */
static PyObject *
end(Job *job, Py_ssize_t length, PyObject *result)
{
    if (result == NULL)
        result = PyUnicode_FromKindAndData(PyUnicode_4BYTE_KIND, job->out, length);
    else
        Py_INCREF(result);
    PyMem_Free(job->out);
    PyBuffer_Release(&job->view);
    return result;
}

/* normalize(text, table) -> str | None: each character looked up (a code point, SPACE for a
 * non-word character, DEPENDS for one whose result depends on its neighbours), and each run
 * of non-word characters made one space. None when any character DEPENDS or lies beyond the
 * BMP: the caller then takes the general path. */
static PyObject *
native_normalize(PyObject *self, PyObject *const *args, Py_ssize_t nargs)
{
    Job job;
    if (begin(&job, args, nargs, "normalize") < 0)
        return NULL;
    Py_ssize_t w = 0;
    int in_space = 0;
    for (Py_ssize_t i = 0; i < job.n; i++) {
        Py_UCS4 ch = PyUnicode_READ(job.kind, job.data, i);
        uint32_t to = ch < BMP ? job.table[ch] : DEPENDS;
        if (to == DEPENDS)
            return end(&job, 0, Py_None);
        if (to == SPACE) {
            if (!in_space)
                job.out[w++] = SPACE;
            in_space = 1;
        }
        else {
            job.out[w++] = to;
            in_space = 0;
        }
    }
    return end(&job, w, NULL);
}

/* fold(text, table) -> str: each BMP character looked up, the rest kept; same length. */
static PyObject *
native_fold(PyObject *self, PyObject *const *args, Py_ssize_t nargs)
{
    Job job;
    if (begin(&job, args, nargs, "fold") < 0)
        return NULL;
    for (Py_ssize_t i = 0; i < job.n; i++) {
        Py_UCS4 ch = PyUnicode_READ(job.kind, job.data, i);
        job.out[i] = ch < BMP ? job.table[ch] : ch;
    }
    return end(&job, job.n, NULL);
}

/* compact(text, table) -> str: fold(text, table), its whitespace runs made single spaces and
 * its ends stripped (" ".join(s.split())), then every space beside a non-ASCII character
 * dropped. */
static PyObject *
native_compact(PyObject *self, PyObject *const *args, Py_ssize_t nargs)
{
    Job job;
    if (begin(&job, args, nargs, "compact") < 0)
        return NULL;
    Py_UCS4 *out = job.out;
    /* First the split and join: a space is written only between two words. */
    Py_ssize_t w = 0;
    int pending = 0;
    for (Py_ssize_t i = 0; i < job.n; i++) {
        Py_UCS4 ch = PyUnicode_READ(job.kind, job.data, i);
        Py_UCS4 to = ch < BMP ? job.table[ch] : ch;
        if (Py_UNICODE_ISSPACE(to)) {
            pending = w > 0;
            continue;
        }
        if (pending)
            out[w++] = ' ';
        pending = 0;
        out[w++] = to;
    }
    /* Then the spaces beside wide characters go (each space stands between two non-spaces). */
    Py_ssize_t k = 0;
    for (Py_ssize_t i = 0; i < w; i++) {
        if (out[i] == ' ' && (out[i - 1] >= 0x80 || out[i + 1] >= 0x80))
            continue;
        out[k++] = out[i];
    }
    return end(&job, k, NULL);
}

/* tidy_lines(text, spaces) -> str: the text's lines (as str.splitlines() cuts them), each
 * stripped (str.strip()) and each run of the characters in ``spaces`` inside it made one space,
 * the empty ones left out, joined by "\n". (A "\r\n" is two breaks around an empty line here,
 * one in splitlines(): the same, since empty lines go.) */
#define TIDY_SPACES 8

/* Whether ``ch`` ends a line for str.splitlines() (Py_UNICODE_ISLINEBREAK, without its call
 * into the character database for each of a post's characters). */
static inline int
is_linebreak(Py_UCS4 ch)
{
    return ch < 0x85 ? (ch >= 0x0a && ch <= 0x0d) || (ch >= 0x1c && ch <= 0x1e)
                     : ch == 0x85 || ch == 0x2028 || ch == 0x2029;
}

#define TIDY_LOOP(type)                                                                       \
    {                                                                                         \
        const type *in = data;                                                                \
        type *out = buffer;                                                                   \
        while (start < n) {                                                                   \
            Py_ssize_t stop = start; /* the line is start:stop, its break at stop */          \
            while (stop < n && !is_linebreak(in[stop]))                                       \
                stop++;                                                                       \
            Py_ssize_t lo = start, hi = stop;                                                 \
            while (lo < hi && Py_UNICODE_ISSPACE(in[lo]))                                     \
                lo++;                                                                         \
            while (hi > lo && Py_UNICODE_ISSPACE(in[hi - 1]))                                 \
                hi--;                                                                         \
            if (lo < hi) {                                                                    \
                if (w > 0)                                                                    \
                    out[w++] = '\n';                                                          \
                int in_run = 0;                                                               \
                for (Py_ssize_t i = lo; i < hi; i++) {                                        \
                    Py_UCS4 ch = in[i];                                                       \
                    int space = 0;                                                            \
                    for (Py_ssize_t k = 0; k < n_spaces && !space; k++)                       \
                        space = ch == spaces[k];                                              \
                    if (!space)                                                               \
                        out[w++] = (type)ch;                                                  \
                    else if (!in_run)                                                         \
                        out[w++] = ' ';                                                       \
                    in_run = space;                                                           \
                }                                                                             \
            }                                                                                 \
            start = stop + 1;                                                                 \
        }                                                                                     \
    }

/* The text is read and written in its own width (a space and a line break fit any), not
 * through PyUnicode_READ and four bytes a character: a news post's text took 1.85 µs instead
 * of 3.39. */
static PyObject *
native_tidy_lines(PyObject *self, PyObject *const *args, Py_ssize_t nargs)
{
    if (nargs != 2 || !PyUnicode_Check(args[0]) || !PyUnicode_Check(args[1])) {
        PyErr_SetString(PyExc_TypeError, "tidy_lines() takes a text and a str of space characters");
        return NULL;
    }
    PyObject *text = args[0];
    Py_UCS4 spaces[TIDY_SPACES];
    Py_ssize_t n_spaces = PyUnicode_GET_LENGTH(args[1]);
    if (n_spaces > TIDY_SPACES) {
        PyErr_Format(PyExc_ValueError, "tidy_lines() takes at most %d space characters", TIDY_SPACES);
        return NULL;
    }
    for (Py_ssize_t i = 0; i < n_spaces; i++)
        spaces[i] = PyUnicode_READ_CHAR(args[1], i);
    Py_ssize_t n = PyUnicode_GET_LENGTH(text);
    int kind = PyUnicode_KIND(text);
    const void *data = PyUnicode_DATA(text);
    void *buffer = PyMem_Malloc((n ? n : 1) * kind);
    if (buffer == NULL)
        return PyErr_NoMemory();
    Py_ssize_t w = 0, start = 0;
    if (kind == PyUnicode_1BYTE_KIND)
        TIDY_LOOP(Py_UCS1)
    else if (kind == PyUnicode_2BYTE_KIND)
        TIDY_LOOP(Py_UCS2)
    else
        TIDY_LOOP(Py_UCS4)
    PyObject *result = PyUnicode_FromKindAndData(kind, buffer, w);
    PyMem_Free(buffer);
    return result;
}

/* ascii_mask(text) -> int: bit i set when chr(i) (i < 128) occurs in the text. */
#define ASCII_MASK_LOOP(type)                                                                \
    for (Py_ssize_t i = 0; i < n; i++) {                                                     \
        Py_UCS4 ch = ((const type *)data)[i];                                                \
        if (ch < 64)                                                                         \
            lo |= (uint64_t)1 << ch;                                                         \
        else if (ch < 128)                                                                   \
            hi |= (uint64_t)1 << (ch - 64);                                                  \
    }

static PyObject *
native_ascii_mask(PyObject *self, PyObject *text)
{
    if (!PyUnicode_Check(text)) {
        PyErr_SetString(PyExc_TypeError, "ascii_mask() takes one str");
        return NULL;
    }
    Py_ssize_t n = PyUnicode_GET_LENGTH(text);
    const void *data = PyUnicode_DATA(text);
    uint64_t lo = 0, hi = 0;
    switch (PyUnicode_KIND(text)) {
    case PyUnicode_1BYTE_KIND:
        ASCII_MASK_LOOP(Py_UCS1)
        break;
    case PyUnicode_2BYTE_KIND:
        ASCII_MASK_LOOP(Py_UCS2)
        break;
    default:
        ASCII_MASK_LOOP(Py_UCS4)
    }
    PyObject *high = PyLong_FromUnsignedLongLong(hi), *shift = PyLong_FromLong(64);
    PyObject *low = PyLong_FromUnsignedLongLong(lo), *shifted = NULL, *mask = NULL;
    if (high != NULL && shift != NULL && low != NULL && (shifted = PyNumber_Lshift(high, shift)) != NULL)
        mask = PyNumber_Or(shifted, low);
    Py_XDECREF(high);
    Py_XDECREF(shift);
    Py_XDECREF(low);
    Py_XDECREF(shifted);
    return mask;
}

/* What frontyaml's _UNUSUAL pattern does not match: the characters the fast path reads. */
static int
front_char(Py_UCS4 ch)
{
    return ch == '\n' || (ch >= 0x20 && ch <= 0x7e) || (ch >= 0xa0 && ch <= 0x2027) || (ch >= 0x202a && ch <= 0xd7ff)
           || (ch >= 0xe000 && ch <= 0xfefe) || (ch >= 0xff00 && ch <= 0xfffd) || (ch >= 0x10000 && ch <= 0x10ffff);
}

/* YAML's indicators: a plain scalar cannot start with one (frontyaml._INDICATORS). */
static int
indicator(Py_UCS4 ch)
{
    return ch < 128 && strchr("-?:,[]{}#&*!|>'\"%@`", (int)ch) != NULL && ch != 0;
}

/* (first, second), taking the caller's reference to second (NULL: an error is set). */
static PyObject *
front_pair(PyObject *first, PyObject *second)
{
    if (second == NULL)
        return NULL;
    PyObject *pair = PyTuple_Pack(2, first, second);
    Py_DECREF(second);
    return pair;
}

/* A scalar's text, raw[lo:hi], as frontyaml._scalar_text has it: (True, text) quoted, (False,
 * text) plain, NULL with no error set when it is neither (with an error set: out of memory). */
static PyObject *
front_scalar(PyObject *raw, int kind, const void *data, Py_ssize_t lo, Py_ssize_t hi)
{
    while (hi > lo && PyUnicode_READ(kind, data, hi - 1) == ' ')
        hi--;
    if (hi <= lo)
        return NULL;
    Py_UCS4 first = PyUnicode_READ(kind, data, lo), last = PyUnicode_READ(kind, data, hi - 1);
    if (hi - lo >= 2 && (first == '"' || first == '\'') && last == first) {
        int quoted = 1;
        for (Py_ssize_t i = lo + 1; i < hi - 1 && quoted; i++) {
            Py_UCS4 ch = PyUnicode_READ(kind, data, i);
            quoted = ch != first && !(first == '"' && ch == '\\');
        }
        if (quoted)
            return front_pair(Py_True, PyUnicode_Substring(raw, lo + 1, hi - 1));
    }
    if (indicator(first) || Py_UNICODE_ISSPACE(first) || last == ':' || Py_UNICODE_ISSPACE(last))
        return NULL;
    for (Py_ssize_t i = lo; i + 1 < hi; i++) {
        Py_UCS4 ch = PyUnicode_READ(kind, data, i), next = PyUnicode_READ(kind, data, i + 1);
        if ((ch == ':' && next == ' ') || (next == '#' && Py_UNICODE_ISSPACE(ch)))
            return NULL;  /* a value that ends early, or holds a comment */
    }
    return front_pair(Py_False, PyUnicode_Substring(raw, lo, hi));
}

/* Appends item to list and drops the caller's reference; -1 on failure (item may be NULL). */
static int
append_new(PyObject *list, PyObject *item)
{
    if (item == NULL)
        return -1;
    int failed = PyList_Append(list, item);
    Py_DECREF(item);
    return failed;
}

/* front_lines(raw) -> list | None: frontyaml.front_lines, the twin (see there): each key's
 * text with its value, a (quoted, text) scalar or a list of them; None if raw is not of
 * that simple shape. */
static PyObject *
native_front_lines(PyObject *self, PyObject *const *args, Py_ssize_t nargs)
{
    if (nargs != 1 || !PyUnicode_Check(args[0])) {
        PyErr_SetString(PyExc_TypeError, "front_lines() takes one str");
        return NULL;
    }
    PyObject *raw = args[0];
    Py_ssize_t n = PyUnicode_GET_LENGTH(raw);
    int kind = PyUnicode_KIND(raw);
    const void *data = PyUnicode_DATA(raw);
    for (Py_ssize_t i = 0; i < n; i++)
        if (!front_char(PyUnicode_READ(kind, data, i)))
            Py_RETURN_NONE;
    PyObject *entries = PyList_New(0), *items = NULL;  /* items: borrowed, the last key's list */
    if (entries == NULL)
        return NULL;
    Py_ssize_t indent = -1, start = 0;
    while (start <= n) {
        Py_ssize_t stop = start;
        while (stop < n && PyUnicode_READ(kind, data, stop) != '\n')
            stop++;
        Py_ssize_t lo = start, spaces = 0;
        start = stop + 1;
        while (lo + spaces < stop && PyUnicode_READ(kind, data, lo + spaces) == ' ')
            spaces++;
        if (lo + spaces == stop)
            continue;  /* a blank line */
        if (stop - (lo + spaces) >= 3 && PyUnicode_READ(kind, data, lo + spaces) == '-'
            && PyUnicode_READ(kind, data, lo + spaces + 1) == ' ') {  /* "- item" */
            if (items == NULL || (indent >= 0 && spaces != indent))
                goto not_simple;
            indent = spaces;
            PyObject *scalar = front_scalar(raw, kind, data, lo + spaces + 2, stop);
            if (scalar == NULL)
                goto not_simple;
            if (append_new(items, scalar) < 0)
                goto failed;
            continue;
        }
        Py_UCS4 first = PyUnicode_READ(kind, data, lo);  /* "key: value" or "key:" */
        if (Py_UNICODE_ISSPACE(first) || indicator(first))  /* (a key starts as a plain scalar does) */
            goto not_simple;
        Py_ssize_t colon = lo + 1;
        for (; colon < stop; colon++) {
            Py_UCS4 ch = PyUnicode_READ(kind, data, colon);
            if (ch == ':' || ch == '#' || Py_UNICODE_ISSPACE(ch))
                break;
        }
        if (colon == stop || PyUnicode_READ(kind, data, colon) != ':')
            goto not_simple;
        Py_ssize_t value = colon + 1;
        if (value < stop && PyUnicode_READ(kind, data, value) != ' ')
            goto not_simple;
        while (value < stop && PyUnicode_READ(kind, data, value) == ' ')
            value++;
        PyObject *found;  /* the value: a new list (a list begins), or a scalar */
        if (value == stop) {
            items = found = PyList_New(0);  /* (borrowed from the entry from here on) */
            indent = -1;
        }
        else {
            items = NULL;
            found = front_scalar(raw, kind, data, value, stop);
            if (found == NULL)
                goto not_simple;
        }
        if (found == NULL)
            goto failed;
        PyObject *key = PyUnicode_Substring(raw, lo, colon);
        PyObject *entry = key == NULL ? NULL : PyTuple_Pack(2, key, found);
        Py_XDECREF(key);
        Py_DECREF(found);
        if (append_new(entries, entry) < 0)
            goto failed;
    }
    return entries;
not_simple:
    if (PyErr_Occurred())
        goto failed;
    Py_DECREF(entries);
    Py_RETURN_NONE;
failed:
    Py_DECREF(entries);
    return NULL;
}

/* Whether a token is dropped: a space, all whitespace, or a stop word. */
static int
dropped(PyObject *tok, PyObject *stop)
{
    Py_ssize_t n = PyUnicode_GET_LENGTH(tok);
    if (n > 0) {
        int kind = PyUnicode_KIND(tok);
        const void *data = PyUnicode_DATA(tok);
        Py_ssize_t i = 0;
        while (i < n && Py_UNICODE_ISSPACE(PyUnicode_READ(kind, data, i)))
            i++;
        if (i == n)
            return 1;
    }
    return PySet_Contains(stop, tok);
}

/* filter_tokens(tokens, stopwords) -> list: the tokens that are neither whitespace nor stop
 * words, in order. */
static PyObject *
native_filter_tokens(PyObject *self, PyObject *const *args, Py_ssize_t nargs)
{
    if (nargs != 2 || !PyList_Check(args[0]) || !PyAnySet_Check(args[1])) {
        PyErr_SetString(PyExc_TypeError, "filter_tokens() takes a list and a set");
        return NULL;
    }
    PyObject *tokens = args[0], *stop = args[1];
    Py_ssize_t n = PyList_GET_SIZE(tokens);
    PyObject *kept = PyList_New(0);
    if (kept == NULL)
        return NULL;
    for (Py_ssize_t i = 0; i < n; i++) {
        PyObject *tok = PyList_GET_ITEM(tokens, i);
        if (!PyUnicode_CheckExact(tok)) {  /* (a subclass could run Python code that changes the list) */
            PyErr_SetString(PyExc_TypeError, "filter_tokens() needs str tokens");
            goto fail;
        }
        int drop = dropped(tok, stop);
        if (drop < 0 || (!drop && PyList_Append(kept, tok) < 0))
            goto fail;
    }
    return kept;
fail:
    Py_DECREF(kept);
    return NULL;
}

/* ---- a worker's terms, numbered as they are first met ------------------------------------ */

/* The hash of a str's text in the tables below: FNV-1a over its code units, then murmur3's
 * finishing mix. Tokens come fresh from the segmenter, so Python's own str hash (SipHash) was
 * computed once for each of a post's 330 tokens: 15 µs of the 46 its counting took. Equal
 * texts have the same kind and code units (PEP 393's canonical form), hence the same hash. */
static inline uint32_t
text_hash(PyObject *text)
{
    const unsigned char *p = PyUnicode_DATA(text);
    size_t n = (size_t)PyUnicode_GET_LENGTH(text) * PyUnicode_KIND(text);
    uint32_t h = 2166136261u;
    for (size_t i = 0; i < n; i++) {
        h ^= p[i];
        h *= 16777619u;
    }
    h ^= h >> 16;
    h *= 0x85ebca6bu;
    h ^= h >> 13;
    h *= 0xc2b2ae35u;
    h ^= h >> 16;
    return h;
}

/* Whether two str objects hold the same text. */
static inline int
same_text(PyObject *a, PyObject *b)
{
    Py_ssize_t n = PyUnicode_GET_LENGTH(a);
    int kind = PyUnicode_KIND(a);
    return a == b || (n == PyUnicode_GET_LENGTH(b) && kind == PyUnicode_KIND(b)
                      && memcmp(PyUnicode_DATA(a), PyUnicode_DATA(b), (size_t)n * kind) == 0);
}

/* Whether a token is all whitespace (and not empty): filter_tokens() drops it. */
static int
all_space(PyObject *tok)
{
    Py_ssize_t n = PyUnicode_GET_LENGTH(tok);
    int kind = PyUnicode_KIND(tok);
    const void *data = PyUnicode_DATA(tok);
    for (Py_ssize_t i = 0; i < n; i++)
        if (!Py_UNICODE_ISSPACE(PyUnicode_READ(kind, data, i)))
            return 0;
    return n > 0;
}

/* Ask for the cache line at ``address`` ahead of its use. A post's distinct terms fall in
 * slots all over a worker's table (megabytes, out of the processor's caches by the time the
 * segmenter has been through the next post): asked for together, their loads overlap, where
 * one lookup after another waited for each in turn. Counting each of 10,000 news posts right
 * after segmenting it, with a table of 170,000 terms: 12.3-13.7 µs a post instead of 16.2-16.6
 * (20.6-22.5 before the slots held short texts themselves). */
#if defined(__GNUC__) || defined(__clang__)
#define PREFETCH(address) __builtin_prefetch(address)
#else
#define PREFETCH(address) ((void)0)
#endif

/* In a Terms slot: a stop word, which is never numbered. */
#define STOPPED (-1)

typedef struct {
    uint32_t hash;
    int32_t number;   /* the term's number, or STOPPED */
    uint64_t key;     /* 0: an empty slot; odd: the text itself (inline_key()); else a reference to it */
} Slot;

/* At most this many bytes of text fit in a Slot's key (93% of a news post's distinct terms: a
 * CJK term of three characters takes six). */
#define INLINE_BYTES 7

/* A text of at most INLINE_BYTES bytes as a Slot's key: bit 0 set, its kind (1, 2 or 4 bytes a
 * character) in bits 1-2, its size in bytes in bits 3-5, and its bytes above. Two texts are
 * equal when their keys are (PEP 393: equal texts have the same kind and code units). 0 for a
 * longer text, which a Slot refers to instead. Looking a term up then touches its slot alone:
 * comparing the texts reached a str object elsewhere in memory, a cache miss. Counting 10,000
 * news posts with a worker's table of 170,000 terms took 13.3-14.7 µs a post instead of
 * 17.9-20.6 (comparing the hashes alone, not enough to be right, took 9.7-11.1). */
static inline uint64_t
inline_key(PyObject *text)
{
    int kind = PyUnicode_KIND(text);
    size_t n = (size_t)PyUnicode_GET_LENGTH(text) * kind;
    if (n > INLINE_BYTES)
        return 0;
    const unsigned char *p = PyUnicode_DATA(text);
    uint64_t key = 1 | (uint64_t)(kind == 1 ? 0 : kind == 2 ? 1 : 2) << 1 | (uint64_t)n << 3;
    for (size_t i = 0; i < n; i++)
        key |= (uint64_t)p[i] << (8 * (i + 1));
    return key;
}

/* The str object a Slot's key refers to (a key that is even and not 0). */
#define KEY_TEXT(key) ((PyObject *)(uintptr_t)(key))

/* Terms(stopwords): a worker's term numbers, the twin of the dict that the Python count_terms()
 * keeps (terms numbered 0, 1, ... as they are first met), with the stop words in it too. An
 * open-addressing table (linear probing, at most half full) of (hash, number, key: the text
 * itself when short, else a reference to it): looking a term up touches its slot (and a long
 * term's text), where a dict touched its index, its entry, its key and its value's int object,
 * each a cache miss in a table of a few hundred thousand terms. */
typedef struct {
    PyObject_HEAD
    Slot *slots;
    size_t mask, used;
    Py_ssize_t numbered;
} Terms;

static PyTypeObject TermsType;

/* The slot holding ``text`` (whose inline_key() is ``key``), or the empty one where it would go. */
static Slot *
terms_find(Slot *slots, size_t mask, PyObject *text, uint32_t hash, uint64_t key)
{
    for (size_t i = hash & mask;; i = (i + 1) & mask) {
        Slot *slot = &slots[i];
        if (slot->key == 0)
            return slot;
        if (slot->hash == hash
                && (key ? slot->key == key : !(slot->key & 1) && same_text(KEY_TEXT(slot->key), text)))
            return slot;
    }
}

static int
terms_grow(Terms *t)
{
    size_t size = (t->mask + 1) * 2;
    Slot *slots = PyMem_Calloc(size, sizeof(Slot));
    if (slots == NULL) {
        PyErr_NoMemory();
        return -1;
    }
    for (size_t i = 0; i <= t->mask; i++) {
        if (t->slots[i].key == 0)
            continue;
        size_t j = t->slots[i].hash & (size - 1);
        while (slots[j].key != 0)  /* (the texts are distinct: the first empty slot) */
            j = (j + 1) & (size - 1);
        slots[j] = t->slots[i];
    }
    PyMem_Free(t->slots);
    t->slots = slots;
    t->mask = size - 1;
    return 0;
}

/* Fill the empty ``slot`` (found for ``text``, whose inline_key() is ``key``) with ``number``. */
static int
terms_put(Terms *t, Slot *slot, PyObject *text, uint32_t hash, uint64_t key, int32_t number)
{
    if (key == 0) {
        Py_INCREF(text);
        key = (uint64_t)(uintptr_t)text;
    }
    slot->key = key;
    slot->hash = hash;
    slot->number = number;
    return ++t->used * 2 > t->mask + 1 ? terms_grow(t) : 0;
}

static void
terms_dealloc(Terms *t)
{
    if (t->slots != NULL) {
        for (size_t i = 0; i <= t->mask; i++)
            if (t->slots[i].key != 0 && !(t->slots[i].key & 1))
                Py_DECREF(KEY_TEXT(t->slots[i].key));
        PyMem_Free(t->slots);
    }
    Py_TYPE(t)->tp_free((PyObject *)t);
}

static PyObject *
terms_new(PyTypeObject *type, PyObject *args, PyObject *kwargs)
{
    PyObject *stop;
    if (!PyArg_ParseTuple(args, "O:Terms", &stop) || (kwargs != NULL && PyDict_GET_SIZE(kwargs) > 0)
            || !PyAnySet_Check(stop)) {
        if (!PyErr_Occurred())
            PyErr_SetString(PyExc_TypeError, "Terms() takes the set of stop words");
        return NULL;
    }
    Terms *t = (Terms *)type->tp_alloc(type, 0);
    if (t == NULL)
        return NULL;
    t->mask = 1023;
    t->slots = PyMem_Calloc(t->mask + 1, sizeof(Slot));
    if (t->slots == NULL) {
        Py_DECREF(t);
        return PyErr_NoMemory();
    }
    PyObject *words = PyObject_GetIter(stop), *word = NULL;
    if (words == NULL) {
        Py_DECREF(t);
        return NULL;
    }
    while ((word = PyIter_Next(words)) != NULL) {
        if (!PyUnicode_CheckExact(word) || PyUnicode_READY(word) < 0) {
            if (!PyErr_Occurred())
                PyErr_SetString(PyExc_TypeError, "Terms() needs str stop words");
            break;
        }
        uint32_t hash = text_hash(word);
        uint64_t key = inline_key(word);
        Slot *slot = terms_find(t->slots, t->mask, word, hash, key);
        if (slot->key == 0 && terms_put(t, slot, word, hash, key, STOPPED) < 0)
            break;
        Py_CLEAR(word);
    }
    Py_XDECREF(word);
    Py_DECREF(words);
    if (PyErr_Occurred()) {
        Py_DECREF(t);
        return NULL;
    }
    return (PyObject *)t;
}

static Py_ssize_t
terms_len(Terms *t)
{
    return t->numbered;
}

static PySequenceMethods terms_as_sequence = {.sq_length = (lenfunc)terms_len};

static PyTypeObject TermsType = {
    PyVarObject_HEAD_INIT(NULL, 0)
    .tp_name = "retrieval._native.Terms",
    .tp_basicsize = sizeof(Terms),
    .tp_dealloc = (destructor)terms_dealloc,
    .tp_as_sequence = &terms_as_sequence,
    .tp_flags = Py_TPFLAGS_DEFAULT,
    .tp_doc = "Terms(stopwords): a worker's term numbers (len: how many), for count_terms().",
    .tp_new = terms_new,
};

/* A post's distinct tokens while they are counted: an open-addressing table (linear probing,
 * at most half full) of rows, each a token (borrowed from the lists), its hash and its count,
 * rows numbered in first-seen order. (A dict cost more: over 8,000 posts, counting took 22-26
 * µs a post with this and 32-34 with the dict, in alternating runs.) */
typedef struct {
    Py_ssize_t *slots;  /* row + 1, 0 for an empty slot */
    size_t mask;
    PyObject **texts;
    uint32_t *hashes;
    int32_t *tally;
    Py_ssize_t rows;
} Rows;

static int
rows_init(Rows *r, Py_ssize_t tokens)
{
    size_t size = 8;
    while (size < (size_t)tokens * 2)
        size <<= 1;
    Py_ssize_t cap = tokens ? tokens : 1;
    r->slots = PyMem_Calloc(size, sizeof(Py_ssize_t));
    r->texts = PyMem_Malloc(cap * sizeof(PyObject *));
    r->hashes = PyMem_Malloc(cap * sizeof(uint32_t));
    r->tally = PyMem_Malloc(cap * sizeof(int32_t));
    r->mask = size - 1;
    r->rows = 0;
    if (r->slots == NULL || r->texts == NULL || r->hashes == NULL || r->tally == NULL) {
        PyErr_NoMemory();
        return -1;
    }
    return 0;
}

static void
rows_free(Rows *r)
{
    PyMem_Free(r->slots);
    PyMem_Free(r->texts);
    PyMem_Free(r->hashes);
    PyMem_Free(r->tally);
}

/* Count one more of each token in ``tokens``. */
static int
rows_count(Rows *r, PyObject *tokens)
{
    Py_ssize_t n = PyList_GET_SIZE(tokens);
    for (Py_ssize_t k = 0; k < n; k++) {
        PyObject *tok = PyList_GET_ITEM(tokens, k);
        if (!PyUnicode_CheckExact(tok) || PyUnicode_READY(tok) < 0) {
            if (!PyErr_Occurred())
                PyErr_SetString(PyExc_TypeError, "count_terms() needs str tokens");
            return -1;
        }
        uint32_t hash = text_hash(tok);
        size_t i = hash & r->mask;
        for (;; i = (i + 1) & r->mask) {
            Py_ssize_t slot = r->slots[i];
            if (slot == 0 || (r->hashes[slot - 1] == hash && same_text(r->texts[slot - 1], tok)))
                break;
        }
        if (r->slots[i] != 0) {
            r->tally[r->slots[i] - 1]++;
            continue;
        }
        Py_ssize_t row = r->rows++;
        r->slots[i] = row + 1;
        r->texts[row] = tok;
        r->hashes[row] = hash;
        r->tally[row] = 1;
    }
    return 0;
}

/* count_terms(title_tokens, body_tokens, terms, new) -> (ids, tfs, titled, length): the
 * distinct terms of title and body, tokens that filter_tokens() drops left out (the title's
 * first, each in first-seen order) as int32 bytes of their numbers in ``terms`` (a Terms; a term
 * not there gets the next number, len(terms), and is appended to ``new``), their counts as int32
 * bytes, how many of them the title has, and how many tokens were counted. The tokens are
 * counted first and filtered after, once per distinct token (a stop word is one in ``terms``).
 * Over 8,000 posts of the million, their tokens new objects as the segmenter gives them, a
 * post's counting took 17-18 µs with Terms and these hashes, 26-34 with dicts and str hashes
 * (three runs of each). */
static PyObject *
native_count_terms(PyObject *self, PyObject *const *args, Py_ssize_t nargs)
{
    if (nargs != 4 || !PyList_Check(args[0]) || !PyList_Check(args[1]) || !PyObject_TypeCheck(args[2], &TermsType)
            || !PyList_Check(args[3])) {
        PyErr_SetString(PyExc_TypeError, "count_terms() takes two lists, a Terms and a list");
        return NULL;
    }
    Terms *terms = (Terms *)args[2];
    PyObject *new_terms = args[3], *ids = NULL, *tfs = NULL, *result = NULL;
    int32_t *id_out = NULL;
    Rows rows;
    if (rows_init(&rows, PyList_GET_SIZE(args[0]) + PyList_GET_SIZE(args[1])) < 0 || rows_count(&rows, args[0]) < 0)
        goto done;
    Py_ssize_t title_rows = rows.rows, titled = 0, length = 0, kept = 0;
    if (rows_count(&rows, args[1]) < 0)
        goto done;
    id_out = PyMem_Malloc((rows.rows ? rows.rows : 1) * sizeof(int32_t));
    if (id_out == NULL) {
        PyErr_NoMemory();
        goto done;
    }
    for (Py_ssize_t row = 0; row < rows.rows; row++)
        PREFETCH(&terms->slots[rows.hashes[row] & terms->mask]);
    for (Py_ssize_t row = 0; row < rows.rows; row++) {  /* first-seen order */
        PyObject *text = rows.texts[row];
        if (all_space(text))
            continue;
        uint64_t key = inline_key(text);
        Slot *slot = terms_find(terms->slots, terms->mask, text, rows.hashes[row], key);
        int32_t number;
        if (slot->key != 0) {
            number = slot->number;
            if (number == STOPPED)
                continue;
        }
        else {
            if (terms->numbered >= INT32_MAX) {
                PyErr_SetString(PyExc_OverflowError, "term number beyond int32");
                goto done;
            }
            number = (int32_t)terms->numbered;
            if (PyList_Append(new_terms, text) < 0 || terms_put(terms, slot, text, rows.hashes[row], key, number) < 0)
                goto done;
            terms->numbered++;
        }
        titled += row < title_rows;
        length += rows.tally[row];
        rows.tally[kept] = rows.tally[row];  /* (kept <= row: the counts move down in place) */
        id_out[kept++] = number;
    }
    ids = PyBytes_FromStringAndSize((const char *)id_out, kept * (Py_ssize_t)sizeof(int32_t));
    tfs = PyBytes_FromStringAndSize((const char *)rows.tally, kept * (Py_ssize_t)sizeof(int32_t));
    if (ids != NULL && tfs != NULL)
        result = Py_BuildValue("(OOnn)", ids, tfs, titled, length);
done:
    rows_free(&rows);
    PyMem_Free(id_out);
    Py_XDECREF(ids);
    Py_XDECREF(tfs);
    return result;
}

/* ---- scoring ------------------------------------------------------------------------------ */

/* The buffers a call takes (at most ``capacity``), all given back by release(). */
typedef struct {
    Py_buffer *views;
    int taken, capacity;
} Views;

/* Give back the buffers taken (the array holding them stays: it may be on the stack). */
static void
give_back(Views *v)
{
    while (v->taken > 0)
        PyBuffer_Release(&v->views[--v->taken]);
}

/* give_back(), and free the array, taken with PyMem_Calloc. */
static void
release(Views *v)
{
    give_back(v);
    PyMem_Free(v->views);
    v->views = NULL;
}

/* The memory of ``obj``: C-contiguous, of items ``itemsize`` bytes long (0: any) whose format
 * is one of ``kinds`` (struct-module letters); its length in items goes to ``*n`` and its item
 * size to ``*size`` (unless NULL). NULL with an exception set when it is not such a buffer. */
static void *
view(Views *v, PyObject *obj, int writable, Py_ssize_t itemsize, const char *kinds, const char *what,
     Py_ssize_t *n, int *size)
{
    if (v->taken == v->capacity) {
        PyErr_SetString(PyExc_SystemError, "more buffers than planned");
        return NULL;
    }
    Py_buffer *b = &v->views[v->taken];
    if (PyObject_GetBuffer(obj, b, PyBUF_C_CONTIGUOUS | PyBUF_FORMAT | (writable ? PyBUF_WRITABLE : 0)) < 0)
        return NULL;
    v->taken++;
    const char *format = b->format ? b->format : "B";
    while (*format == '@' || *format == '=' || *format == '<')
        format++;
    if ((itemsize && b->itemsize != itemsize) || format[0] == 0 || format[1] != 0 || !strchr(kinds, format[0])) {
        PyErr_Format(PyExc_TypeError, "%s has the wrong item type (%s)", what, b->format ? b->format : "bytes");
        return NULL;
    }
    *n = b->len / b->itemsize;
    if (size)
        *size = (int)b->itemsize;
    return b->buf;
}

#define FLOATS "d"
#define UNSIGNED "BHIL"
#define FLAGS "?B"
#define INT64 "lq"
#define INT32 "il"
#define LIST_FIELDS 7

/* Item ``i`` of little-endian unsigned items ``width`` bytes long (1, 2 or 4). */
static inline uint32_t
item(const uint8_t *data, int width, Py_ssize_t i)
{
    if (width == 1)
        return data[i];
    const uint8_t *p = data + i * width;
    if (width == 2)
        return (uint32_t)p[0] | (uint32_t)p[1] << 8;
    return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 | (uint32_t)p[3] << 24;
}

/* One term's postings in one segment as stored, read from the front: document gaps ``width``
 * bytes each (the first gap is the first document), frequencies ``tf_size`` bytes each, title
 * flags from bit ``first_bit`` of ``flag``; the term's idf and count in the query; the
 * posting ``at`` is next and its document is ``doc`` (NONE past the last posting). */
typedef struct {
    const uint8_t *gap, *tf, *flag;
    int width, tf_size;
    Py_ssize_t n, first_bit, at;
    double idf, title_weight;
    long count;
    uint64_t doc;
} Cursor;

#define NONE UINT64_MAX

/* Move to posting ``at`` (its document's gap added), or past the end. -1 with ValueError set
 * when the document is past the last (``n_docs``). */
static inline int
move_to(Cursor *c, Py_ssize_t at, Py_ssize_t n_docs)
{
    c->at = at;
    if (at == c->n) {
        c->doc = NONE;
        return 0;
    }
    c->doc = (at ? c->doc : 0) + item(c->gap, c->width, at);
    if (c->doc >= (uint64_t)n_docs) {
        PyErr_SetString(PyExc_ValueError, "the postings of a term name documents past the last");
        return -1;
    }
    return 0;
}

/* A tuple (gaps, width, tfs, titles, first_bit, idf, count) as a cursor on its first posting. */
static int
cursor(Views *v, PyObject *fields, Cursor *c, Py_ssize_t n_docs)
{
    if (!PyTuple_Check(fields) || PyTuple_GET_SIZE(fields) != LIST_FIELDS) {
        PyErr_SetString(PyExc_TypeError, "a list of postings is a tuple (gaps, width, tfs, titles, first_bit, idf, count)");
        return -1;
    }
    PyObject *const *f = &PyTuple_GET_ITEM(fields, 0);
    Py_ssize_t n_gap_bytes, n_title_bytes;
    c->width = (int)PyLong_AsLong(f[1]);
    c->first_bit = PyLong_AsSsize_t(f[4]);
    c->idf = PyFloat_AsDouble(f[5]);
    c->count = PyLong_AsLong(f[6]);
    if (PyErr_Occurred())
        return -1;
    c->title_weight = c->idf > 0 ? c->idf : 0.0;
    if ((c->width != 1 && c->width != 2 && c->width != 4) || c->first_bit < 0 || c->count < 1) {
        PyErr_SetString(PyExc_ValueError, "bad width, first bit or count");
        return -1;
    }
    if (!(c->gap = view(v, f[0], 0, 1, UNSIGNED, "gaps", &n_gap_bytes, NULL))
            || !(c->tf = view(v, f[2], 0, 0, UNSIGNED, "tfs", &c->n, &c->tf_size))
            || !(c->flag = view(v, f[3], 0, 1, UNSIGNED, "titles", &n_title_bytes, NULL)))
        return -1;
    if (n_gap_bytes != c->n * c->width || (c->tf_size != 1 && c->tf_size != 2 && c->tf_size != 4)
            || n_title_bytes * 8 < c->first_bit + c->n) {
        PyErr_SetString(PyExc_ValueError, "the postings' arrays disagree in length");
        return -1;
    }
    return move_to(c, 0, n_docs);
}

/* The BM25 of the cursor's posting in a document of length norm ``norm``, in the reference's
 * order of operations: ((tf * (k1 + 1)) / (norm + tf)) * idf, times the count. */
static inline double
contribution(const Cursor *c, double k1p1, double norm)
{
    double tf = (double)item(c->tf, c->tf_size, c->at);
    double s = tf * k1p1;
    s /= norm + tf;
    s *= c->idf;
    if (c->count > 1)
        s *= (double)c->count;
    return s;
}

/* The idf the cursor's posting adds to its document's title idf: max(idf, 0) when the term is
 * in the title, else 0 (a product, not a branch: whether a title holds a common word follows
 * no pattern a branch predictor could learn; adding 0.0 changes no sum). */
static inline double
title_part(const Cursor *c)
{
    Py_ssize_t bit = c->first_bit + c->at;
    return (double)(c->flag[bit >> 3] >> (bit & 7) & 1) * c->title_weight;
}

/* One list alone (the usual short query): its postings in order, written out as they come. */
static Py_ssize_t
score_one(Cursor *c, const double *norm, Py_ssize_t n_docs, double k1p1, const uint8_t *alive,
          int64_t *doc_to, double *score_to, double *title_to)
{
    Py_ssize_t kept = 0;
    while (c->doc != NONE) {
        uint64_t doc = c->doc;
        doc_to[kept] = (int64_t)doc;  /* written always, kept only when live: no branch */
        score_to[kept] = contribution(c, k1p1, norm[doc]);
        if (title_to)
            title_to[kept] = title_part(c);
        kept += alive[doc] != 0;
        if (move_to(c, c->at + 1, n_docs) < 0)
            return -1;
    }
    return kept;
}

/* Several lists, merged: each document's contributions summed in the lists' order. */
static Py_ssize_t
score_merged(Cursor *cursors, Py_ssize_t k, const double *norm, Py_ssize_t n_docs, double k1p1,
             const uint8_t *alive, int64_t *doc_to, double *score_to, double *title_to)
{
    Py_ssize_t kept = 0;
    for (;;) {
        uint64_t doc = NONE;
        for (Py_ssize_t j = 0; j < k; j++)
            doc = cursors[j].doc < doc ? cursors[j].doc : doc;
        if (doc == NONE)
            return kept;
        double score = 0.0, title = 0.0;
        for (Py_ssize_t j = 0; j < k; j++) {
            Cursor *c = &cursors[j];
            if (c->doc != doc)
                continue;
            score += contribution(c, k1p1, norm[doc]);
            title += title_part(c);
            if (move_to(c, c->at + 1, n_docs) < 0)
                return -1;
        }
        doc_to[kept] = (int64_t)doc;
        score_to[kept] = score;
        if (title_to)
            title_to[kept] = title;
        kept += alive[doc] != 0;
    }
}

/* score_lists(lists, norms, k1_plus_1, live, docs_out, scores_out, titles_out) -> int: BM25
 * of every live document some list of postings holds (ascending), and unless titles_out is
 * None the idf mass of the lists whose term its title holds; returns how many. ``lists`` are
 * tuples (gaps, width, tfs, titles, first_bit, idf, count), each one term's postings in one
 * segment as stored; ``norms`` the documents' length norms.
 *
 * The lists are merged as they are decoded (each has its documents ascending), a document's
 * contributions summed in the lists' order, each computed in the reference's order of
 * operations: ((tf * (k1 + 1)) / (norm + tf)) * idf, times the count. Summing into arrays
 * over all documents instead reads and writes a cache line of each of two 8 MB arrays per
 * posting at a million posts, and then has to sweep them. The twin of
 * InvertedIndex._score_arrays. */
static PyObject *
native_score_lists(PyObject *self, PyObject *const *args, Py_ssize_t nargs)
{
    if (nargs != 7 || !PyTuple_Check(args[0])) {
        PyErr_SetString(PyExc_TypeError, "score_lists() takes a tuple of lists and 6 more arguments");
        return NULL;
    }
    Py_ssize_t k = PyTuple_GET_SIZE(args[0]);
    Views v = {.views = PyMem_Calloc(3 * k + 5, sizeof(Py_buffer)), .taken = 0, .capacity = (int)(3 * k + 5)};
    Cursor *cursors = PyMem_Calloc(k ? k : 1, sizeof(Cursor));
    PyObject *result = NULL;
    if (v.views == NULL || cursors == NULL) {
        PyErr_NoMemory();
        goto done;
    }
    double k1p1 = PyFloat_AsDouble(args[2]);
    Py_ssize_t n_docs, n_live, room, n_scores_out, n_titles_out = PY_SSIZE_T_MAX;
    const double *norm;
    const uint8_t *alive;
    int64_t *doc_to;
    double *score_to, *title_to = NULL;  /* NULL: no title idf asked for */
    if ((k1p1 == -1.0 && PyErr_Occurred())
            || !(norm = view(&v, args[1], 0, 8, FLOATS, "norms", &n_docs, NULL))
            || !(alive = view(&v, args[3], 0, 1, FLAGS, "live", &n_live, NULL))
            || !(doc_to = view(&v, args[4], 1, 8, INT64, "docs_out", &room, NULL))
            || !(score_to = view(&v, args[5], 1, 8, FLOATS, "scores_out", &n_scores_out, NULL))
            || (args[6] != Py_None && !(title_to = view(&v, args[6], 1, 8, FLOATS, "titles_out", &n_titles_out, NULL))))
        goto done;
    Py_ssize_t postings = 0;
    for (Py_ssize_t j = 0; j < k; j++) {
        if (cursor(&v, PyTuple_GET_ITEM(args[0], j), &cursors[j], n_docs) < 0)
            goto done;
        postings += cursors[j].n;
    }
    if (n_live < n_docs || room < postings || n_scores_out < postings || n_titles_out < postings) {
        PyErr_SetString(PyExc_ValueError, "score_lists(): fewer live flags than documents, or outputs than postings");
        goto done;
    }
    Py_ssize_t kept = k == 1 ? score_one(&cursors[0], norm, n_docs, k1p1, alive, doc_to, score_to, title_to)
                             : score_merged(cursors, k, norm, n_docs, k1p1, alive, doc_to, score_to, title_to);
    if (kept < 0)
        goto done;
    result = PyLong_FromSsize_t(kept);
done:
    release(&v);
    PyMem_Free(cursors);
    return result;
}

/* ---- grouping postings by term ------------------------------------------------------------ */

/* Row pointers ``ptr`` (``n_ptr`` of them) start at 0, never descend and end at ``n``: 0, else
 * -1 with ValueError naming ``what``. Checked whole before any row is read or written: a
 * pointer past ``n`` in the middle would otherwise be followed before the descent after it. */
static int
rows_span(const int64_t *ptr, Py_ssize_t n_ptr, Py_ssize_t n, const char *what)
{
    int ok = n_ptr >= 1 && ptr[0] == 0 && ptr[n_ptr - 1] == n;
    for (Py_ssize_t t = 0; ok && t + 1 < n_ptr; t++)
        ok = ptr[t + 1] >= ptr[t];
    if (!ok)
        PyErr_Format(PyExc_ValueError, "%s(): ptr does not span the postings in ascending rows", what);
    return ok ? 0 : -1;
}

/* Columns group_by_term() moves at most. */
#define GROUP_COLUMNS 4

/* group_by_term(terms, ptr, columns, grouped): each of ``columns`` (arrays parallel to
 * ``terms``, items of 1, 2, 4 or 8 bytes) written to the same place of ``grouped`` (arrays of
 * the same item sizes, as long at least) in the stable order that groups postings by term: a
 * counting sort, ``ptr[t]`` being where term ``t``'s postings begin, as the cumulative counts
 * make it. The twin of ``column[np.argsort(terms, kind="stable")]`` for each column: the sort
 * took 0.3 s for a build's run of four million postings, the order in C 0.02-0.03 s and the
 * columns gathered by it 0.06-0.10 s more; each posting is read once here, in order, and put
 * where it goes. ValueError for a term outside ``ptr`` or postings that do not fill ``ptr``
 * exactly. */
static PyObject *
native_group_by_term(PyObject *self, PyObject *const *args, Py_ssize_t nargs)
{
    if (nargs != 4 || !PyTuple_Check(args[2]) || !PyTuple_Check(args[3])
            || PyTuple_GET_SIZE(args[2]) != PyTuple_GET_SIZE(args[3])) {
        PyErr_SetString(PyExc_TypeError, "group_by_term() takes terms, ptr, and two tuples of as many arrays");
        return NULL;
    }
    Py_ssize_t k = PyTuple_GET_SIZE(args[2]);
    if (k > GROUP_COLUMNS) {
        PyErr_SetString(PyExc_ValueError, "group_by_term(): too many columns");
        return NULL;
    }
    Py_buffer views[2 + 2 * GROUP_COLUMNS];
    Views v = {.views = views, .taken = 0, .capacity = 2 + 2 * GROUP_COLUMNS};
    Py_ssize_t n, n_ptr;
    const int32_t *terms;
    const int64_t *ptr;
    const char *in[GROUP_COLUMNS];
    char *out[GROUP_COLUMNS];
    int size[GROUP_COLUMNS];
    int64_t *next = NULL;
    PyObject *result = NULL;
    if (!(terms = view(&v, args[0], 0, 4, INT32, "terms", &n, NULL))
            || !(ptr = view(&v, args[1], 0, 8, INT64, "ptr", &n_ptr, NULL)))
        goto done;
    for (Py_ssize_t c = 0; c < k; c++) {
        Py_ssize_t len, room;
        int out_size;
        if (!(in[c] = view(&v, PyTuple_GET_ITEM(args[2], c), 0, 0, "bBhHiIlLqQ?", "a column", &len, &size[c]))
                || !(out[c] = view(&v, PyTuple_GET_ITEM(args[3], c), 1, size[c], "bBhHiIlLqQ?", "a grouped column", &room, &out_size)))
            goto done;
        if (len != n || room < n) {
            PyErr_SetString(PyExc_ValueError, "group_by_term(): a column is not as long as terms, or its output short");
            goto done;
        }
    }
    if (rows_span(ptr, n_ptr, n, "group_by_term") < 0)
        goto done;
    Py_ssize_t n_terms = n_ptr - 1;
    next = PyMem_Malloc((n_terms ? n_terms : 1) * sizeof(int64_t));
    if (next == NULL) {
        PyErr_NoMemory();
        goto done;
    }
    memcpy(next, ptr, n_terms * sizeof(int64_t));
    for (Py_ssize_t i = 0; i < n; i++) {
        int32_t t = terms[i];
        if (t < 0 || t >= n_terms || next[t] >= ptr[t + 1]) {
            PyErr_Format(PyExc_ValueError, "group_by_term(): term %d at %zd is outside ptr, or over its count", (int)t, i);
            goto done;
        }
        int64_t j = next[t]++;
        for (Py_ssize_t c = 0; c < k; c++) {
            switch (size[c]) {
            case 1: ((uint8_t *)out[c])[j] = ((const uint8_t *)in[c])[i]; break;
            case 2: ((uint16_t *)out[c])[j] = ((const uint16_t *)in[c])[i]; break;
            case 4: ((uint32_t *)out[c])[j] = ((const uint32_t *)in[c])[i]; break;
            default: ((uint64_t *)out[c])[j] = ((const uint64_t *)in[c])[i]; break;
            }
        }
    }
    result = Py_NewRef(Py_None);
done:
    PyMem_Free(next);
    give_back(&v);
    return result;
}

/* ---- document gaps ------------------------------------------------------------------------ */

/* The widths (1, 2 or 4 bytes) of gaps as large as ``top``. */
static inline uint8_t
gap_width(uint32_t top)
{
    return top < (1u << 8) ? 1 : top < (1u << 16) ? 2 : 4;
}

/* The gap of row ``i`` of a term whose rows begin at ``first``: its document itself for the
 * first, else the distance from the one before; -1 where the documents do not ascend. */
static inline int64_t
gap_at(const int32_t *docs, int64_t first, int64_t i)
{
    int64_t gap = i == first ? (int64_t)docs[i] : (int64_t)docs[i] - docs[i - 1];
    return gap < 0 || (i > first && gap == 0) ? -1 : gap;
}

/* gap_widths(docs, ptr, width_out, start_out): per term (rows ``ptr[t]:ptr[t+1]`` of ``docs``,
 * ascending), the width its largest gap needs, and where its bytes begin (``start_out``, one
 * more than the terms: the last is the bytes in all). A term's first gap is its first document.
 * The first half of DocGaps.encode; ValueError for documents that do not ascend in a term. */
static PyObject *
native_gap_widths(PyObject *self, PyObject *const *args, Py_ssize_t nargs)
{
    if (nargs != 4) {
        PyErr_SetString(PyExc_TypeError, "gap_widths() takes docs, ptr, width_out and start_out");
        return NULL;
    }
    Py_buffer views[4];
    Views v = {.views = views, .taken = 0, .capacity = 4};
    Py_ssize_t n, n_ptr, n_width, n_start;
    const int32_t *docs;
    const int64_t *ptr;
    uint8_t *width;
    int64_t *start;
    PyObject *result = NULL;
    if (!(docs = view(&v, args[0], 0, 4, INT32, "docs", &n, NULL))
            || !(ptr = view(&v, args[1], 0, 8, INT64, "ptr", &n_ptr, NULL))
            || !(width = view(&v, args[2], 1, 1, "B", "width_out", &n_width, NULL))
            || !(start = view(&v, args[3], 1, 8, INT64, "start_out", &n_start, NULL)))
        goto done;
    if (rows_span(ptr, n_ptr, n, "gap_widths") < 0)
        goto done;
    if (n_width < n_ptr - 1 || n_start < n_ptr) {
        PyErr_SetString(PyExc_ValueError, "gap_widths(): an output is short");
        goto done;
    }
    start[0] = 0;
    for (Py_ssize_t t = 0; t + 1 < n_ptr; t++) {
        int64_t lo = ptr[t], hi = ptr[t + 1];
        uint32_t top = 0;
        for (int64_t i = lo; i < hi; i++) {
            int64_t gap = gap_at(docs, lo, i);
            if (gap < 0) {
                PyErr_Format(PyExc_ValueError, "gap_widths(): the documents of term %zd do not ascend", t);
                goto done;
            }
            if ((uint32_t)gap > top)
                top = (uint32_t)gap;
        }
        width[t] = gap_width(top);
        start[t + 1] = start[t] + (hi - lo) * width[t];
    }
    result = Py_NewRef(Py_None);
done:
    give_back(&v);
    return result;
}

/* The layout of gaps (``start``, ``width``) agrees with the postings (``ptr``) and ``n_data``
 * bytes: 0, else -1 with ValueError. */
static int
gaps_agree(const int64_t *ptr, Py_ssize_t n_ptr, const int64_t *start, Py_ssize_t n_start, const uint8_t *width,
           Py_ssize_t n_width, Py_ssize_t n_data, const char *name)
{
    if (n_ptr < 1 || n_start != n_ptr || n_width != n_ptr - 1 || ptr[0] != 0 || start[0] != 0 || start[n_start - 1] != n_data)
        goto bad;
    for (Py_ssize_t t = 0; t + 1 < n_ptr; t++) {
        int w = width[t];
        if ((w != 1 && w != 2 && w != 4) || ptr[t + 1] < ptr[t] || start[t + 1] - start[t] != (ptr[t + 1] - ptr[t]) * w)
            goto bad;
    }
    return 0;
bad:
    PyErr_Format(PyExc_ValueError, "%s(): the gaps disagree with the postings", name);
    return -1;
}

/* write_gaps(docs, ptr, start, width, data_out): the gaps gap_widths() measured, written
 * (little-endian, ``width[t]`` bytes each) from byte ``start[t]`` on: the second half of
 * DocGaps.encode. */
static PyObject *
native_write_gaps(PyObject *self, PyObject *const *args, Py_ssize_t nargs)
{
    if (nargs != 5) {
        PyErr_SetString(PyExc_TypeError, "write_gaps() takes docs, ptr, start, width and data_out");
        return NULL;
    }
    Py_buffer views[5];
    Views v = {.views = views, .taken = 0, .capacity = 5};
    Py_ssize_t n, n_ptr, n_start, n_width, n_data;
    const int32_t *docs;
    const int64_t *ptr, *start;
    const uint8_t *width;
    uint8_t *data;
    PyObject *result = NULL;
    if (!(docs = view(&v, args[0], 0, 4, INT32, "docs", &n, NULL))
            || !(ptr = view(&v, args[1], 0, 8, INT64, "ptr", &n_ptr, NULL))
            || !(start = view(&v, args[2], 0, 8, INT64, "start", &n_start, NULL))
            || !(width = view(&v, args[3], 0, 1, "B", "width", &n_width, NULL))
            || !(data = view(&v, args[4], 1, 1, "B", "data_out", &n_data, NULL))
            || gaps_agree(ptr, n_ptr, start, n_start, width, n_width, n_data, "write_gaps") < 0)
        goto done;
    if (rows_span(ptr, n_ptr, n, "write_gaps") < 0)
        goto done;
    for (Py_ssize_t t = 0; t + 1 < n_ptr; t++) {
        int w = width[t];
        uint8_t *to = data + start[t];
        for (int64_t i = ptr[t]; i < ptr[t + 1]; i++, to += w) {
            int64_t gap = gap_at(docs, ptr[t], i);
            if (gap < 0 || gap >= (int64_t)1 << (8 * w)) {
                PyErr_Format(PyExc_ValueError, "write_gaps(): a gap of term %zd does not fit its width", t);
                goto done;
            }
            for (int b = 0; b < w; b++)
                to[b] = (uint8_t)(gap >> (8 * b));
        }
    }
    result = Py_NewRef(Py_None);
done:
    give_back(&v);
    return result;
}

/* decode_gaps(data, start, width, ptr, docs_out): every term's documents, in term order (each
 * term's gaps summed from 0): DocGaps.decode's twin. */
static PyObject *
native_decode_gaps(PyObject *self, PyObject *const *args, Py_ssize_t nargs)
{
    if (nargs != 5) {
        PyErr_SetString(PyExc_TypeError, "decode_gaps() takes data, start, width, ptr and docs_out");
        return NULL;
    }
    Py_buffer views[5];
    Views v = {.views = views, .taken = 0, .capacity = 5};
    Py_ssize_t n_data, n_start, n_width, n_ptr, room;
    const uint8_t *data, *width;
    const int64_t *start, *ptr;
    int32_t *docs;
    PyObject *result = NULL;
    if (!(data = view(&v, args[0], 0, 1, "B", "data", &n_data, NULL))
            || !(start = view(&v, args[1], 0, 8, INT64, "start", &n_start, NULL))
            || !(width = view(&v, args[2], 0, 1, "B", "width", &n_width, NULL))
            || !(ptr = view(&v, args[3], 0, 8, INT64, "ptr", &n_ptr, NULL))
            || !(docs = view(&v, args[4], 1, 4, INT32, "docs_out", &room, NULL))
            || gaps_agree(ptr, n_ptr, start, n_start, width, n_width, n_data, "decode_gaps") < 0)
        goto done;
    if (room < ptr[n_ptr - 1]) {
        PyErr_SetString(PyExc_ValueError, "decode_gaps(): docs_out is short");
        goto done;
    }
    for (Py_ssize_t t = 0; t + 1 < n_ptr; t++) {
        int w = width[t];
        const uint8_t *from = data + start[t];
        int64_t doc = 0;
        for (int64_t i = ptr[t]; i < ptr[t + 1]; i++, from += w) {
            doc += item(from, w, 0);
            docs[i] = (int32_t)doc;
        }
    }
    result = Py_NewRef(Py_None);
done:
    give_back(&v);
    return result;
}

/* The arrays of a segment as join_rows() takes them. */
#define SEGMENT_ARRAYS 6

/* One segment's postings (see postings.Segment): rows ptr[t]:ptr[t+1] of term t, their gaps
 * bytes start[t]:start[t+1] of data, width[t] bytes each, their frequencies (tf_size bytes
 * each) and title bits. */
typedef struct {
    const int64_t *ptr, *start;
    const uint8_t *data, *width, *titles;
    const uint8_t *tfs;
    Py_ssize_t n_terms, n_data, n_tfs, n_titles;
    int tf_size;
} Part;

/* Unsigned item ``i`` of ``size`` bytes (1, 2, 4 or 8) at ``base``. */
static inline uint64_t
unsigned_at(const uint8_t *base, int size, Py_ssize_t i)
{
    switch (size) {
    case 1: return base[i];
    case 2: return ((const uint16_t *)base)[i];
    case 4: return ((const uint32_t *)base)[i];
    default: return ((const uint64_t *)base)[i];
    }
}

static inline void
put_unsigned(uint8_t *base, int size, Py_ssize_t i, uint64_t value)
{
    switch (size) {
    case 1: base[i] = (uint8_t)value; break;
    case 2: ((uint16_t *)base)[i] = (uint16_t)value; break;
    case 4: ((uint32_t *)base)[i] = (uint32_t)value; break;
    default: ((uint64_t *)base)[i] = value; break;
    }
}

static inline void
put_gap(uint8_t *to, int width, uint32_t gap)
{
    for (int b = 0; b < width; b++)
        to[b] = (uint8_t)(gap >> (8 * b));
}

/* Term ``t`` of ``part`` is well formed (a width of 1, 2 or 4 and as many bytes as rows, all
 * within the arrays): its rows go to *lo, *hi. */
static int
part_term(const Part *part, Py_ssize_t t, int64_t *lo, int64_t *hi)
{
    *lo = *hi = 0;
    if (t >= part->n_terms)
        return 1;
    int w = part->width[t];
    *lo = part->ptr[t];
    *hi = part->ptr[t + 1];
    return (w == 1 || w == 2 || w == 4) && 0 <= *lo && *lo <= *hi && *hi <= part->n_tfs && (*hi + 7) / 8 <= part->n_titles
        && part->start[t] >= 0 && part->start[t + 1] - part->start[t] == (*hi - *lo) * w && part->start[t + 1] <= part->n_data;
}

/* join_rows(segments, a, ptr_out, start_out, width_out, data_out, tfs_out, flags_out) -> int:
 * terms a:a+len(width_out) of ``segments`` (a tuple of (ptr, data, start, width, tfs, titles),
 * a Segment's arrays), each term's rows of one segment after another's: the twin of
 * postings._merged_rows() when every document is live and none is renumbered, without decoding
 * the rows into arrays first. Writes each term's first row (ptr_out, from 0), its gaps as DocGaps.encode
 * would (start_out, width_out, data_out: at least 4 bytes a row), the frequencies (tfs_out, an
 * unsigned type at least as wide as every segment's) and the title flags (flags_out, a byte a
 * row); returns the gap bytes written. ValueError when a term's documents do not ascend (from
 * one segment to the next, or within one) or a segment's arrays disagree. */
static PyObject *
native_join_rows(PyObject *self, PyObject *const *args, Py_ssize_t nargs)
{
    if (nargs != 8 || !PyTuple_Check(args[0])) {
        PyErr_SetString(PyExc_TypeError, "join_rows() takes segments, a, and six output arrays");
        return NULL;
    }
    Py_ssize_t n_parts = PyTuple_GET_SIZE(args[0]), a = PyLong_AsSsize_t(args[1]);
    if (a < 0) {
        if (!PyErr_Occurred())
            PyErr_SetString(PyExc_ValueError, "join_rows(): a is negative");
        return NULL;
    }
    if (n_parts > INT_MAX / SEGMENT_ARRAYS - 6) {
        PyErr_SetString(PyExc_ValueError, "join_rows(): too many segments");
        return NULL;
    }
    Views v = {.views = PyMem_Calloc(SEGMENT_ARRAYS * n_parts + 6, sizeof(Py_buffer)), .taken = 0,
               .capacity = SEGMENT_ARRAYS * (int)n_parts + 6};
    Part *parts = PyMem_Calloc(n_parts ? n_parts : 1, sizeof(Part));
    int64_t *lasts = NULL;
    PyObject *result = NULL;
    if (v.views == NULL || parts == NULL) {
        PyMem_Free(v.views);
        PyMem_Free(parts);
        return PyErr_NoMemory();
    }
    for (Py_ssize_t s = 0; s < n_parts; s++) {
        PyObject *seg = PyTuple_GET_ITEM(args[0], s);
        Part *part = &parts[s];
        Py_ssize_t n_ptr, n_start, n_width;
        if (!PyTuple_Check(seg) || PyTuple_GET_SIZE(seg) != SEGMENT_ARRAYS) {
            PyErr_SetString(PyExc_TypeError, "join_rows(): a segment is a tuple of six arrays");
            goto done;
        }
        if (!(part->ptr = view(&v, PyTuple_GET_ITEM(seg, 0), 0, 8, INT64, "ptr", &n_ptr, NULL))
                || !(part->data = view(&v, PyTuple_GET_ITEM(seg, 1), 0, 1, "B", "data", &part->n_data, NULL))
                || !(part->start = view(&v, PyTuple_GET_ITEM(seg, 2), 0, 8, INT64, "start", &n_start, NULL))
                || !(part->width = view(&v, PyTuple_GET_ITEM(seg, 3), 0, 1, "B", "width", &n_width, NULL))
                || !(part->tfs = view(&v, PyTuple_GET_ITEM(seg, 4), 0, 0, UNSIGNED, "tfs", &part->n_tfs, &part->tf_size))
                || !(part->titles = view(&v, PyTuple_GET_ITEM(seg, 5), 0, 1, "B", "titles", &part->n_titles, NULL)))
            goto done;
        part->n_terms = n_ptr - 1;
        if (n_ptr < 1 || n_start != n_ptr || n_width != n_ptr - 1) {
            PyErr_SetString(PyExc_ValueError, "join_rows(): a segment's gaps disagree with its postings");
            goto done;
        }
    }
    Py_ssize_t n_ptr_out, n_start_out, n_terms, room, n_tfs_out, n_flags;
    int64_t *ptr_out, *start_out;
    uint8_t *width_out, *data_out, *tfs_out, *flags_out;
    int tf_out_size;
    if (!(ptr_out = view(&v, args[2], 1, 8, INT64, "ptr_out", &n_ptr_out, NULL))
            || !(start_out = view(&v, args[3], 1, 8, INT64, "start_out", &n_start_out, NULL))
            || !(width_out = view(&v, args[4], 1, 1, "B", "width_out", &n_terms, NULL))
            || !(data_out = view(&v, args[5], 1, 1, "B", "data_out", &room, NULL))
            || !(tfs_out = view(&v, args[6], 1, 0, UNSIGNED, "tfs_out", &n_tfs_out, &tf_out_size))
            || !(flags_out = view(&v, args[7], 1, 1, FLAGS, "flags_out", &n_flags, NULL)))
        goto done;
    if (n_ptr_out != n_terms + 1 || n_start_out != n_terms + 1) {
        PyErr_SetString(PyExc_ValueError, "join_rows(): ptr_out and start_out need one more item than width_out");
        goto done;
    }
    for (Py_ssize_t s = 0; s < n_parts; s++)
        if (parts[s].tf_size > tf_out_size) {
            PyErr_SetString(PyExc_ValueError, "join_rows(): tfs_out is narrower than a segment's frequencies");
            goto done;
        }
    lasts = PyMem_Malloc((n_terms * n_parts > 0 ? n_terms * n_parts : 1) * sizeof(int64_t));
    if (lasts == NULL) {
        PyErr_NoMemory();
        goto done;
    }
    /* First pass: each term's rows, its largest gap (a segment's first document counts from the
     * last document of the term in the segments before) and each segment's last document. */
    ptr_out[0] = start_out[0] = 0;
    for (Py_ssize_t k = 0; k < n_terms; k++) {
        int64_t rows = 0, last = -1;
        uint32_t top = 0;
        for (Py_ssize_t s = 0; s < n_parts; s++) {
            const Part *part = &parts[s];
            int64_t lo, hi;
            if (!part_term(part, a + k, &lo, &hi)) {
                PyErr_SetString(PyExc_ValueError, "join_rows(): a segment's gaps disagree with its postings");
                goto done;
            }
            if (lo < hi) {
                int w = part->width[a + k];
                const uint8_t *from = part->data + part->start[a + k];
                int64_t doc = item(from, w, 0), gap = last < 0 ? doc : doc - last;
                int ascending = last < 0 || gap > 0;
                top = gap > top ? (uint32_t)gap : top;
                for (int64_t i = 1; ascending && i < hi - lo; i++) {
                    uint32_t next = item(from, w, i);
                    ascending = next > 0;
                    top = next > top ? next : top;
                    doc += next;
                }
                if (!ascending) {
                    PyErr_Format(PyExc_ValueError, "join_rows(): the documents of term %zd do not ascend", a + k);
                    goto done;
                }
                if (doc > INT32_MAX) {
                    PyErr_Format(PyExc_ValueError, "join_rows(): a document of term %zd is past int32", a + k);
                    goto done;
                }
                last = doc;
                rows += hi - lo;
            }
            lasts[k * n_parts + s] = last;
        }
        width_out[k] = gap_width(top);
        ptr_out[k + 1] = ptr_out[k] + rows;
        start_out[k + 1] = start_out[k] + rows * width_out[k];
    }
    if (start_out[n_terms] > room || ptr_out[n_terms] > n_tfs_out || ptr_out[n_terms] > n_flags) {
        PyErr_SetString(PyExc_ValueError, "join_rows(): an output is short");
        goto done;
    }
    /* Second pass: the rows written, each segment's after the one before; a segment's gaps
     * after its first are its own (copied as they are when the width is the same). */
    for (Py_ssize_t k = 0; k < n_terms; k++) {
        int w = width_out[k];
        uint8_t *to = data_out + start_out[k];
        int64_t row = ptr_out[k], before = -1;
        for (Py_ssize_t s = 0; s < n_parts; s++) {
            const Part *part = &parts[s];
            int64_t lo, hi;
            part_term(part, a + k, &lo, &hi);
            if (lo < hi) {
                int pw = part->width[a + k];
                const uint8_t *from = part->data + part->start[a + k];
                int64_t first = item(from, pw, 0);
                put_gap(to, w, (uint32_t)(before < 0 ? first : first - before));
                to += w;
                if (pw == w) {
                    memcpy(to, from + w, (size_t)(hi - lo - 1) * w);
                    to += (hi - lo - 1) * w;
                }
                else {
                    for (int64_t i = 1; i < hi - lo; i++, to += w)
                        put_gap(to, w, item(from, pw, i));
                }
                if (part->tf_size == tf_out_size)
                    memcpy(tfs_out + row * tf_out_size, part->tfs + lo * tf_out_size, (size_t)(hi - lo) * tf_out_size);
                else
                    for (int64_t i = lo; i < hi; i++)
                        put_unsigned(tfs_out, tf_out_size, row + i - lo, unsigned_at(part->tfs, part->tf_size, i));
                for (int64_t i = lo; i < hi; i++)
                    flags_out[row + i - lo] = (part->titles[i >> 3] >> (i & 7)) & 1;
                row += hi - lo;
            }
            before = lasts[k * n_parts + s];
        }
    }
    result = PyLong_FromLongLong(start_out[n_terms]);
done:
    PyMem_Free(lasts);
    PyMem_Free(parts);
    release(&v);
    return result;
}

#ifdef HAVE_POSIX_FILES
/* will_need(paths): tell the kernel each file will be read soon (posix_fadvise WILLNEED, which
 * starts reading it into the page cache and returns), opening and closing them in turn with the
 * GIL released the whole time; returns how many files it could open. A worker runs this in a
 * thread over its batch while it analyzes the batch's first files: a file not in the page cache
 * costs about 100 us to read, which a lone worker's core otherwise spends idle (see
 * analyze.reading_ahead for what it saves). A Python thread doing the same wakes for every file
 * and takes the GIL from the analysis each time. */
static PyObject *
native_will_need(PyObject *self, PyObject *const *args, Py_ssize_t nargs)
{
    if (nargs != 1) {
        PyErr_SetString(PyExc_TypeError, "will_need(paths) takes one argument");
        return NULL;
    }
    PyObject *paths = PySequence_Tuple(args[0]);  /* ours: nothing can change it while unlocked */
    if (paths == NULL)
        return NULL;
    Py_ssize_t n = PyTuple_GET_SIZE(paths), opened = 0;
    for (Py_ssize_t i = 0; i < n; i++) {
        PyObject *path = PyTuple_GET_ITEM(paths, i);
        if (!PyBytes_Check(path) || (Py_ssize_t)strlen(PyBytes_AS_STRING(path)) != PyBytes_GET_SIZE(path)) {
            PyErr_SetString(PyExc_TypeError, "will_need takes file system paths as bytes without NUL");
            Py_DECREF(paths);
            return NULL;
        }
    }
    Py_BEGIN_ALLOW_THREADS
    for (Py_ssize_t i = 0; i < n; i++) {
        int fd = open(PyBytes_AS_STRING(PyTuple_GET_ITEM(paths, i)), O_RDONLY | O_CLOEXEC);
        if (fd < 0)
            continue;
        opened++;
#ifdef POSIX_FADV_WILLNEED
        (void)posix_fadvise(fd, 0, 0, POSIX_FADV_WILLNEED);
#endif
        close(fd);
    }
    Py_END_ALLOW_THREADS
    Py_DECREF(paths);
    return PyLong_FromSsize_t(opened);
}

/* Directories below the root that stat_tree descends into, at most (one descriptor each). */
#define STAT_TREE_DEPTH 64

/* stat every entry of the directory ``name`` (relative to ``parent``) and below, skipping
 * entries whose name starts with a byte of ``skip``; links are not followed. Returns how many
 * entries were stat-ed. */
static Py_ssize_t
stat_dir(int parent, const char *name, int flags, const char *skip, int depth)
{
    int fd = openat(parent, name, O_RDONLY | O_DIRECTORY | O_CLOEXEC | flags);
    if (fd < 0)
        return 0;
    DIR *dir = fdopendir(fd);
    if (dir == NULL) {
        close(fd);
        return 0;
    }
    Py_ssize_t seen = 0;
    struct dirent *entry;
    while ((entry = readdir(dir)) != NULL) {
        const char *child = entry->d_name;
        struct stat st;
        if (child[0] == '\0' || strchr(skip, child[0]) != NULL || strcmp(child, ".") == 0 || strcmp(child, "..") == 0)
            continue;
        if (fstatat(dirfd(dir), child, &st, AT_SYMLINK_NOFOLLOW) != 0)
            continue;
        seen++;
        if (S_ISDIR(st.st_mode) && depth < STAT_TREE_DEPTH)
            seen += stat_dir(dirfd(dir), child, O_NOFOLLOW, skip, depth + 1);
    }
    closedir(dir);
    return seen;
}

/* stat_tree(root, skip): stat everything under the directory ``root`` (bytes) but entries whose
 * name starts with a byte of ``skip`` and what links lead to, with the GIL released; returns how
 * many entries it stat-ed. A full scan of the content directory runs this in a thread ahead of
 * its own listing: on a cold cache most of a scan's time is the kernel reading inodes, which
 * this does on the other core (see scan.py for what it saves). */
static PyObject *
native_stat_tree(PyObject *self, PyObject *const *args, Py_ssize_t nargs)
{
    if (nargs != 2 || !PyBytes_Check(args[0]) || !PyBytes_Check(args[1])) {
        PyErr_SetString(PyExc_TypeError, "stat_tree(root, skip) takes two bytes");
        return NULL;
    }
    PyObject *root = args[0], *skip = args[1];
    if ((Py_ssize_t)strlen(PyBytes_AS_STRING(root)) != PyBytes_GET_SIZE(root)
            || (Py_ssize_t)strlen(PyBytes_AS_STRING(skip)) != PyBytes_GET_SIZE(skip)) {
        PyErr_SetString(PyExc_ValueError, "stat_tree: embedded NUL");
        return NULL;
    }
    Py_ssize_t seen;
    Py_INCREF(root);  /* the arguments stay alive (and bytes never change) while unlocked */
    Py_INCREF(skip);
    Py_BEGIN_ALLOW_THREADS
    seen = stat_dir(AT_FDCWD, PyBytes_AS_STRING(root), 0, PyBytes_AS_STRING(skip), 0);
    Py_END_ALLOW_THREADS
    Py_DECREF(root);
    Py_DECREF(skip);
    return PyLong_FromSsize_t(seen);
}

#ifdef __APPLE__
#define MTIME_NS(st) ((int64_t)(st).st_mtimespec.tv_sec * 1000000000 + (st).st_mtimespec.tv_nsec)
#else
#define MTIME_NS(st) ((int64_t)(st).st_mtim.tv_sec * 1000000000 + (st).st_mtim.tv_nsec)
#endif

/* One entry of a directory as list_posts() found it without the GIL. */
typedef struct {
    size_t name;          /* offset of its name (NUL-terminated) in the arena */
    size_t len;
    char kind;            /* 'd' a directory (followed), 'f' any other entry */
    char link;            /* a symbolic link */
    char stat_ok;         /* size, mtime_ns and regular are those of what the name leads to */
    char ascii;           /* the name is ASCII */
    int64_t size, mtime_ns;
    int regular;
} Listed;

typedef struct {
    Listed *entries;
    Py_ssize_t n, room;
    char *arena;
    size_t used, arena_room;
} Listing;

static int
listing_add(Listing *l, const char *name, size_t len, Listed *entry)
{
    if (l->n == l->room) {
        Py_ssize_t room = l->room ? 2 * l->room : 256;
        Listed *grown = realloc(l->entries, (size_t)room * sizeof(Listed));
        if (grown == NULL)
            return -1;
        l->entries = grown;
        l->room = room;
    }
    if (l->used + len + 1 > l->arena_room) {
        size_t room = l->arena_room ? 2 * l->arena_room : 16384;
        while (room < l->used + len + 1)
            room *= 2;
        char *grown = realloc(l->arena, room);
        if (grown == NULL)
            return -1;
        l->arena = grown;
        l->arena_room = room;
    }
    memcpy(l->arena + l->used, name, len + 1);
    entry->name = l->used;
    entry->len = len;
    l->used += len + 1;
    l->entries[l->n++] = *entry;
    return 0;
}

/* Whether a name ends with one of ``suffixes`` (lower-case ASCII) in any case of ASCII letters. */
static int
ends_with_any(const char *name, size_t len, PyObject *suffixes)
{
    for (Py_ssize_t s = 0; s < PyTuple_GET_SIZE(suffixes); s++) {
        PyObject *suffix = PyTuple_GET_ITEM(suffixes, s);
        size_t n = (size_t)PyBytes_GET_SIZE(suffix);
        const char *want = PyBytes_AS_STRING(suffix);
        if (n > len)
            continue;
        size_t i = 0;
        while (i < n) {
            char c = name[len - n + i];
            if (c >= 'A' && c <= 'Z')
                c = (char)(c - 'A' + 'a');
            if (c != want[i])
                break;
            i++;
        }
        if (i == n)
            return 1;
    }
    return 0;
}

/* Phase one of list_posts, with the GIL released: read the directory, and stat (following
 * links) each entry that may be a post file or whose kind its d_type does not tell. Returns
 * 0, or an errno when the directory cannot be opened or read. */
static int
list_entries(const char *path, const char *skip, PyObject *suffixes, const char *temporary, Listing *out)
{
    int fd = open(path, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (fd < 0)
        return errno;
    DIR *dir = fdopendir(fd);
    if (dir == NULL) {
        int err = errno;
        close(fd);
        return err;
    }
    struct dirent *entry;
    for (;;) {
        errno = 0;
        if ((entry = readdir(dir)) == NULL)
            break;
        const char *name = entry->d_name;
        size_t len = strlen(name);
        if (len == 0 || strchr(skip, name[0]) != NULL || strcmp(name, ".") == 0 || strcmp(name, "..") == 0)
            continue;
        Listed item = {0};
        item.ascii = 1;
        for (size_t i = 0; i < len; i++)
            if ((unsigned char)name[i] >= 0x80) {
                item.ascii = 0;
                break;
            }
        struct stat st;
        unsigned char type = entry->d_type;
        if (type == DT_UNKNOWN) {  /* (some file systems do not say) */
            if (fstatat(dirfd(dir), name, &st, AT_SYMLINK_NOFOLLOW) != 0)
                continue;
            type = S_ISLNK(st.st_mode) ? DT_LNK : S_ISDIR(st.st_mode) ? DT_DIR : DT_REG;
        }
        item.link = type == DT_LNK;
        if (type == DT_LNK) {
            if (fstatat(dirfd(dir), name, &st, 0) != 0)
                continue;  /* a broken link: neither a directory nor a readable file */
            item.stat_ok = 1;
            type = S_ISDIR(st.st_mode) ? DT_DIR : DT_REG;
        }
        item.kind = type == DT_DIR ? 'd' : 'f';
        int wanted = item.kind == 'd'
            ? !item.ascii  /* a directory whose name may not be UTF-8: its time is reported */
            : !item.ascii || (ends_with_any(name, len, suffixes) && strchr(temporary, name[len - 1]) == NULL);
        if (wanted && !item.stat_ok) {
            if (fstatat(dirfd(dir), name, &st, 0) == 0)
                item.stat_ok = 1;
            else if (item.kind != 'd')
                continue;  /* (a directory is entered all the same when its name is good) */
        }
        if (item.stat_ok) {
            item.size = (int64_t)st.st_size;
            item.mtime_ns = MTIME_NS(st);
            item.regular = S_ISREG(st.st_mode);
        }
        if (listing_add(out, name, len, &item) < 0) {
            closedir(dir);
            return ENOMEM;
        }
    }
    int err = errno;  /* (0 at the end of the directory; else why it could not be read on) */
    closedir(dir);
    return err;
}

static int
listing_free(Listing *l)
{
    free(l->entries);
    free(l->arena);
    return 0;
}

static int
append_index(PyObject *list, Py_ssize_t i)
{
    PyObject *number = PyLong_FromSsize_t(i);
    int failed = number == NULL || PyList_Append(list, number) < 0;
    Py_XDECREF(number);
    return failed ? -1 : 0;
}

/* list_posts(path, skip, suffixes, temporary, is_post_name): the post files and subdirectories
 * of the directory ``path`` (bytes), as ContentScanner._list_python finds them (its Python twin
 * and reference), entries whose name starts with a byte of ``skip`` left out. A post file is a
 * regular file (links followed) whose name ends with one of ``suffixes`` (lower-case ASCII
 * bytes; the name's ASCII letters in any case) and not with a byte of ``temporary``; a name
 * with other than ASCII in it that does not is asked of ``is_post_name`` (Unicode has
 * letters whose lower case is an ASCII one). Returns (names, sizes, mtimes, bad, bad_dirs,
 * subdirs, newest): the post files' names (str, as os.scandir gives them), sizes and
 * modification times (int64 bytes, nanoseconds), in the directory's order, with the
 * subdirectories whose names are not UTF-8 among them (size 0; their positions in
 * ``bad_dirs``) and the positions of the files whose names are not (``bad``); the other
 * subdirectories as (name, is a link); and the newest post file's time (None: no post file).
 * An entry that vanishes or cannot be stat-ed is left out; a directory that cannot be
 * listed raises OSError. The directory is read and stat-ed with the GIL released: a full scan
 * runs while the bot serves searches. */
static PyObject *
native_list_posts(PyObject *self, PyObject *const *args, Py_ssize_t nargs)
{
    if (nargs != 5 || !PyBytes_Check(args[0]) || !PyBytes_Check(args[1]) || !PyTuple_Check(args[2])
            || !PyBytes_Check(args[3]) || !PyCallable_Check(args[4])) {
        PyErr_SetString(PyExc_TypeError, "list_posts(path, skip, suffixes, temporary, is_post_name) takes bytes, "
                        "bytes, a tuple of bytes, bytes and a callable");
        return NULL;
    }
    PyObject *path = args[0], *skip = args[1], *suffixes = args[2], *temporary = args[3], *is_post = args[4];
    for (Py_ssize_t s = 0; s < PyTuple_GET_SIZE(suffixes); s++)
        if (!PyBytes_Check(PyTuple_GET_ITEM(suffixes, s))) {
            PyErr_SetString(PyExc_TypeError, "list_posts: suffixes must be bytes");
            return NULL;
        }
    if ((Py_ssize_t)strlen(PyBytes_AS_STRING(path)) != PyBytes_GET_SIZE(path)
            || (Py_ssize_t)strlen(PyBytes_AS_STRING(skip)) != PyBytes_GET_SIZE(skip)
            || (Py_ssize_t)strlen(PyBytes_AS_STRING(temporary)) != PyBytes_GET_SIZE(temporary)) {
        PyErr_SetString(PyExc_ValueError, "list_posts: embedded NUL");
        return NULL;
    }
    Listing l = {0};
    int err;
    Py_INCREF(path);  /* (kept alive while unlocked; bytes and tuples never change) */
    Py_INCREF(skip);
    Py_INCREF(suffixes);
    Py_INCREF(temporary);
    Py_BEGIN_ALLOW_THREADS
    err = list_entries(PyBytes_AS_STRING(path), PyBytes_AS_STRING(skip), suffixes, PyBytes_AS_STRING(temporary), &l);
    Py_END_ALLOW_THREADS
    Py_DECREF(skip);
    Py_DECREF(suffixes);
    Py_DECREF(temporary);
    if (err != 0) {
        listing_free(&l);
        if (err == ENOMEM) {
            PyErr_NoMemory();
        } else {
            errno = err;
            PyErr_SetFromErrnoWithFilenameObject(PyExc_OSError, path);
        }
        Py_DECREF(path);
        return NULL;
    }
    Py_DECREF(path);
    PyObject *names = PyList_New(0), *bad = PyList_New(0), *bad_dirs = PyList_New(0), *subdirs = PyList_New(0);
    PyObject *sizes = NULL, *mtimes = NULL, *newest = NULL, *result = NULL;
    int64_t *size_out = NULL, *mtime_out = NULL;
    Py_ssize_t files = 0;
    if (names == NULL || bad == NULL || bad_dirs == NULL || subdirs == NULL)
        goto done;
    if ((size_out = malloc(sizeof(int64_t) * (size_t)(l.n + 1))) == NULL
            || (mtime_out = malloc(sizeof(int64_t) * (size_t)(l.n + 1))) == NULL) {
        PyErr_NoMemory();
        goto done;
    }
    int64_t latest = 0;
    int any = 0;
    const char *ends = PyBytes_AS_STRING(temporary);
    for (Py_ssize_t i = 0; i < l.n; i++) {
        Listed *e = &l.entries[i];
        const char *name = l.arena + e->name;
        if (e->kind == 'f' && !e->stat_ok)
            continue;  /* not a post file's name */
        PyObject *text = PyUnicode_DecodeFSDefaultAndSize(name, (Py_ssize_t)e->len);
        if (text == NULL)
            goto done;
        int utf8 = e->ascii;
        if (!utf8) {
            PyObject *strict = PyUnicode_DecodeUTF8(name, (Py_ssize_t)e->len, "strict");
            utf8 = strict != NULL;
            Py_XDECREF(strict);
            if (!utf8) {
                if (!PyErr_ExceptionMatches(PyExc_UnicodeDecodeError)) {
                    Py_DECREF(text);
                    goto done;
                }
                PyErr_Clear();
            }
        }
        int keep = 0, failed = 0;
        if (e->kind == 'd') {
            if (utf8) {
                PyObject *pair = Py_BuildValue("(OO)", text, e->link ? Py_True : Py_False);
                failed = pair == NULL || PyList_Append(subdirs, pair) < 0;
                Py_XDECREF(pair);
            } else if (e->stat_ok) {
                keep = 1;
                failed = append_index(bad_dirs, files) < 0;
                e->size = 0;
            }
        } else {
            int post = ends_with_any(name, e->len, suffixes) && strchr(ends, name[e->len - 1]) == NULL;
            if (!post && !e->ascii) {
                PyObject *answer = PyObject_CallOneArg(is_post, text);
                post = answer == NULL ? -1 : PyObject_IsTrue(answer);
                Py_XDECREF(answer);
            }
            failed = post < 0;
            if (post > 0 && e->regular) {
                keep = 1;
                if (!utf8)
                    failed = append_index(bad, files) < 0;
                if (!any || e->mtime_ns > latest)
                    latest = e->mtime_ns;
                any = 1;
            }
        }
        if (!failed && keep) {
            failed = PyList_Append(names, text) < 0;
            size_out[files] = e->size;
            mtime_out[files] = e->mtime_ns;
            files++;
        }
        Py_DECREF(text);
        if (failed)
            goto done;
    }
    if ((sizes = PyBytes_FromStringAndSize((const char *)size_out, (Py_ssize_t)(files * sizeof(int64_t)))) == NULL
            || (mtimes = PyBytes_FromStringAndSize((const char *)mtime_out, (Py_ssize_t)(files * sizeof(int64_t)))) == NULL
            || (newest = any ? PyLong_FromLongLong(latest) : Py_NewRef(Py_None)) == NULL)
        goto done;
    result = PyTuple_Pack(7, names, sizes, mtimes, bad, bad_dirs, subdirs, newest);
done:
    free(size_out);
    free(mtime_out);
    listing_free(&l);
    Py_XDECREF(names);
    Py_XDECREF(bad);
    Py_XDECREF(bad_dirs);
    Py_XDECREF(subdirs);
    Py_XDECREF(sizes);
    Py_XDECREF(mtimes);
    Py_XDECREF(newest);
    return result;
}

#endif

static PyMethodDef methods[] = {
    {"normalize", (PyCFunction)(void (*)(void))native_normalize, METH_FASTCALL,
     "normalize(text, table) -> str | None"},
    {"fold", (PyCFunction)(void (*)(void))native_fold, METH_FASTCALL, "fold(text, table) -> str"},
    {"compact", (PyCFunction)(void (*)(void))native_compact, METH_FASTCALL, "compact(text, table) -> str"},
    {"tidy_lines", (PyCFunction)(void (*)(void))native_tidy_lines, METH_FASTCALL, "tidy_lines(text, spaces) -> str"},
    {"ascii_mask", (PyCFunction)native_ascii_mask, METH_O, "ascii_mask(text) -> int"},
    {"front_lines", (PyCFunction)(void (*)(void))native_front_lines, METH_FASTCALL, "front_lines(raw) -> list | None"},
    {"filter_tokens", (PyCFunction)(void (*)(void))native_filter_tokens, METH_FASTCALL,
     "filter_tokens(tokens, stopwords) -> list"},
    {"count_terms", (PyCFunction)(void (*)(void))native_count_terms, METH_FASTCALL,
     "count_terms(title_tokens, body_tokens, terms, new) -> (ids, tfs, titled, length)"},
    {"score_lists", (PyCFunction)(void (*)(void))native_score_lists, METH_FASTCALL,
     "score_lists(lists, norms, k1_plus_1, live, docs_out, scores_out, titles_out) -> int"},
    {"gap_widths", (PyCFunction)(void (*)(void))native_gap_widths, METH_FASTCALL,
     "gap_widths(docs, ptr, width_out, start_out) -> None"},
    {"write_gaps", (PyCFunction)(void (*)(void))native_write_gaps, METH_FASTCALL,
     "write_gaps(docs, ptr, start, width, data_out) -> None"},
    {"decode_gaps", (PyCFunction)(void (*)(void))native_decode_gaps, METH_FASTCALL,
     "decode_gaps(data, start, width, ptr, docs_out) -> None"},
    {"group_by_term", (PyCFunction)(void (*)(void))native_group_by_term, METH_FASTCALL,
     "group_by_term(terms, ptr, columns, grouped) -> None"},
    {"join_rows", (PyCFunction)(void (*)(void))native_join_rows, METH_FASTCALL,
     "join_rows(segments, a, ptr_out, start_out, width_out, data_out, tfs_out, flags_out) -> int"},
#ifdef HAVE_POSIX_FILES
    {"will_need", (PyCFunction)(void (*)(void))native_will_need, METH_FASTCALL, "will_need(paths) -> int"},
    {"stat_tree", (PyCFunction)(void (*)(void))native_stat_tree, METH_FASTCALL, "stat_tree(root, skip) -> int"},
    {"list_posts", (PyCFunction)(void (*)(void))native_list_posts, METH_FASTCALL,
     "list_posts(path, skip, suffixes, temporary, is_post_name) -> (names, sizes, mtimes, bad, bad_dirs, subdirs, newest)"},
#endif
    {NULL, NULL, 0, NULL},
};

static struct PyModuleDef module = {
    PyModuleDef_HEAD_INIT, "_native", "The indexer's and the scorer's hot loops in C (see retrieval/native.py).", -1, methods,
    NULL, NULL, NULL, NULL,
};

PyMODINIT_FUNC
PyInit__native(void)
{
    if (PyType_Ready(&TermsType) < 0)
        return NULL;
    PyObject *m = PyModule_Create(&module);
    if (m == NULL)
        return NULL;
    Py_INCREF(&TermsType);
    if (PyModule_AddObject(m, "Terms", (PyObject *)&TermsType) < 0) {
        Py_DECREF(&TermsType);
        Py_DECREF(m);
        return NULL;
    }
    return m;
}
