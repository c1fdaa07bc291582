/* The indexer's per-character and per-token loops, in C.
 *
 * Each function here does exactly what a Python function in retrieval/tokenizer.py,
 * retrieval/phrases.py or retrieval/analyze.py does (the Python is the reference; the tests
 * hold the two to each other, with Hypothesis). Python spends most of a build's time in these
 * loops: about 40 % of a worker's time on a 1.4 KB post. Every table comes from Python, so
 * no Unicode knowledge lives here: a character is looked up, never classified.
 *
 * The extension is optional: retrieval/native.py falls back to the Python when it was not
 * built (no C compiler when the package was installed).
 */
#define PY_SSIZE_T_CLEAN
#include <Python.h>
#include <stdint.h>

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

/* Count ``tokens``: ``rows`` maps each distinct term to its row (a PyLong, rows numbered in
 * first-seen order) and ``tally[row]`` is its count so far. A repeated token costs one dict
 * lookup. */
static int
count_into(PyObject *rows, PyObject *tokens, long *tally)
{
    Py_ssize_t n = PyList_GET_SIZE(tokens);
    for (Py_ssize_t i = 0; i < n; i++) {
        PyObject *tok = PyList_GET_ITEM(tokens, i);
        if (!PyUnicode_CheckExact(tok)) {  /* hashing a str runs no Python code: the list stays as it is */
            PyErr_SetString(PyExc_TypeError, "count_terms() needs str tokens");
            return -1;
        }
        PyObject *row = PyDict_GetItemWithError(rows, tok);
        if (row != NULL) {
            tally[PyLong_AsSsize_t(row)]++;
            continue;
        }
        if (PyErr_Occurred())
            return -1;
        Py_ssize_t next = PyDict_GET_SIZE(rows);
        PyObject *value = PyLong_FromSsize_t(next);
        if (value == NULL || PyDict_SetItem(rows, tok, value) < 0) {
            Py_XDECREF(value);
            return -1;
        }
        Py_DECREF(value);
        tally[next] = 1;
    }
    return 0;
}

/* count_terms(title_tokens, body_tokens, numbers, new) -> (ids, tfs, titled): the distinct
 * terms of title and body (the title's first, each in first-seen order) as int32 bytes of their
 * numbers in ``numbers`` (a term not there gets the next number, len(numbers), and is
 * appended to ``new``), their counts as int32 bytes, and how many of them the title has. */
static PyObject *
native_count_terms(PyObject *self, PyObject *const *args, Py_ssize_t nargs)
{
    if (nargs != 4 || !PyList_Check(args[0]) || !PyList_Check(args[1]) || !PyDict_Check(args[2])
            || !PyList_Check(args[3])) {
        PyErr_SetString(PyExc_TypeError, "count_terms() takes two lists, a dict and a list");
        return NULL;
    }
    PyObject *numbers = args[2], *new_terms = args[3];
    PyObject *rows = PyDict_New(), *ids = NULL, *tfs = NULL, *result = NULL;
    Py_ssize_t tokens = PyList_GET_SIZE(args[0]) + PyList_GET_SIZE(args[1]);
    long *tally = PyMem_Malloc((tokens ? tokens : 1) * sizeof(long));
    if (rows == NULL || tally == NULL) {
        PyErr_NoMemory();
        goto done;
    }
    if (count_into(rows, args[0], tally) < 0)
        goto done;
    Py_ssize_t titled = PyDict_GET_SIZE(rows);
    if (count_into(rows, args[1], tally) < 0)
        goto done;
    Py_ssize_t distinct = PyDict_GET_SIZE(rows);
    ids = PyBytes_FromStringAndSize(NULL, distinct * (Py_ssize_t)sizeof(int32_t));
    tfs = PyBytes_FromStringAndSize(NULL, distinct * (Py_ssize_t)sizeof(int32_t));
    if (ids == NULL || tfs == NULL)
        goto done;
    int32_t *id_out = (int32_t *)PyBytes_AS_STRING(ids), *tf_out = (int32_t *)PyBytes_AS_STRING(tfs);
    Py_ssize_t pos = 0, row = 0;
    PyObject *term, *unused;
    while (PyDict_Next(rows, &pos, &term, &unused)) {  /* insertion order: row order */
        PyObject *number = PyDict_GetItemWithError(numbers, term);
        long value;
        if (number != NULL) {
            value = PyLong_AsLong(number);
        }
        else {
            if (PyErr_Occurred())
                goto done;
            value = (long)PyDict_GET_SIZE(numbers);
            PyObject *next = PyLong_FromLong(value);
            if (next == NULL)
                goto done;
            int failed = PyDict_SetItem(numbers, term, next) < 0 || PyList_Append(new_terms, term) < 0;
            Py_DECREF(next);
            if (failed)
                goto done;
        }
        if (value > INT32_MAX || (value == -1 && PyErr_Occurred())) {
            PyErr_SetString(PyExc_OverflowError, "term number beyond int32");
            goto done;
        }
        id_out[row] = (int32_t)value;
        tf_out[row] = (int32_t)tally[row];
        row++;
    }
    result = Py_BuildValue("(OOn)", ids, tfs, titled);
done:
    PyMem_Free(tally);
    Py_XDECREF(rows);
    Py_XDECREF(ids);
    Py_XDECREF(tfs);
    return result;
}

static PyMethodDef methods[] = {
    {"normalize", (PyCFunction)(void (*)(void))native_normalize, METH_FASTCALL,
     "normalize(text, table) -> str | None"},
    {"fold", (PyCFunction)(void (*)(void))native_fold, METH_FASTCALL, "fold(text, table) -> str"},
    {"compact", (PyCFunction)(void (*)(void))native_compact, METH_FASTCALL, "compact(text, table) -> str"},
    {"filter_tokens", (PyCFunction)(void (*)(void))native_filter_tokens, METH_FASTCALL,
     "filter_tokens(tokens, stopwords) -> list"},
    {"count_terms", (PyCFunction)(void (*)(void))native_count_terms, METH_FASTCALL,
     "count_terms(title_tokens, body_tokens, numbers, new) -> (ids, tfs, titled)"},
    {NULL, NULL, 0, NULL},
};

static struct PyModuleDef module = {
    PyModuleDef_HEAD_INIT, "_native", "The indexer's hot loops in C (see retrieval/native.py).", -1, methods,
    NULL, NULL, NULL, NULL,
};

PyMODINIT_FUNC
PyInit__native(void)
{
    return PyModule_Create(&module);
}
