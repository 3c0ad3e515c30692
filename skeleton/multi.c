/* Several people (include/kinema/skeleton.h "solver"): the assignment of markers to the
 * labels of all subjects at once, so that a marker serves one label of one person, and the
 * spatial clustering that separates people when they are (re)booted.
 *
 * The assignment is the exact minimum-cost one (Hungarian algorithm, O(n^3)) but run on each
 * connected component of the label-marker candidate graph: people standing apart, and
 * markers far from each other, never meet in one matrix, so the usual component is a handful
 * of labels. Workspaces are sized at create: no allocation per frame. */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "skeleton_internal.h"

#define BIG 1e18

struct skel_assign {
    int max_rows, max_cols, max_edges;
    int *parent;            /* union-find over rows then cols */
    int *comp_rows, *comp_cols;
    int *row_local, *col_local;
    int *edge_order;        /* edges sorted by component root */
    int *root_of_edge;
    double *cost;           /* dense component matrix: rows x (cols + rows) */
    void *workspace;        /* km_assignment_solve's, for up to max_rows x (max_cols + max_rows) */
    int *match;
};

skel_assign *skel_assign_create(int max_rows, int max_cols, int max_edges)
{
    skel_assign *a = calloc(1, sizeof *a);
    if (!a)
        return NULL;
    a->max_rows = max_rows;
    a->max_cols = max_cols;
    a->max_edges = max_edges;
    size_t nodes = (size_t)max_rows + (size_t)max_cols;
    size_t width = (size_t)max_cols + (size_t)max_rows + 1;
    a->parent = malloc(nodes * sizeof(int));
    a->comp_rows = malloc((size_t)max_rows * sizeof(int));
    a->comp_cols = malloc((size_t)max_cols * sizeof(int));
    a->row_local = malloc((size_t)max_rows * sizeof(int));
    a->col_local = malloc((size_t)max_cols * sizeof(int));
    a->edge_order = malloc((size_t)max_edges * sizeof(int));
    a->root_of_edge = malloc((size_t)max_edges * sizeof(int));
    a->cost = malloc(((size_t)max_rows + 1) * width * sizeof(double));
    a->workspace = malloc(km_assignment_workspace_bytes(max_rows, (int)width - 1));
    a->match = malloc(((size_t)max_rows + 1) * sizeof(int));
    if (!a->parent || !a->comp_rows || !a->comp_cols || !a->row_local || !a->col_local ||
        !a->edge_order || !a->root_of_edge || !a->cost || !a->workspace || !a->match) {
        skel_assign_destroy(a);
        return NULL;
    }
    return a;
}

void skel_assign_destroy(skel_assign *a)
{
    if (!a)
        return;
    free(a->parent);
    free(a->comp_rows);
    free(a->comp_cols);
    free(a->row_local);
    free(a->col_local);
    free(a->edge_order);
    free(a->root_of_edge);
    free(a->cost);
    free(a->workspace);
    free(a->match);
    free(a);
}

static int find(int *parent, int x)
{
    while (parent[x] != x) {
        parent[x] = parent[parent[x]];
        x = parent[x];
    }
    return x;
}

void skel_assign_solve(skel_assign *a, int rows, int cols, const skel_edge *edges,
                       int edge_count, const double *unassigned, int *row_to_col)
{
    for (int r = 0; r < rows; r++)
        row_to_col[r] = -1;
    if (rows > a->max_rows)
        rows = a->max_rows;
    if (cols > a->max_cols)
        cols = a->max_cols;
    if (edge_count > a->max_edges)
        edge_count = a->max_edges;
    int *parent = a->parent;
    for (int i = 0; i < rows + cols; i++)
        parent[i] = i;
    for (int e = 0; e < edge_count; e++) {
        if (edges[e].row >= rows || edges[e].col >= cols)
            continue;
        int x = find(parent, edges[e].row), y = find(parent, rows + edges[e].col);
        if (x != y)
            parent[x] = y;
    }
    /* Process each component: collect its rows and columns. */
    for (int i = 0; i < rows; i++)
        a->row_local[i] = -1;
    for (int i = 0; i < cols; i++)
        a->col_local[i] = -1;
    /* edges grouped by root (counting sort would need a table per root; a simple pass per
     * component is enough for the sizes here) */
    for (int e = 0; e < edge_count; e++)
        a->root_of_edge[e] = (edges[e].row < rows && edges[e].col < cols)
                                 ? find(parent, edges[e].row)
                                 : -1;
    for (int r0 = 0; r0 < rows; r0++) {
        int root = find(parent, r0);
        if (a->row_local[r0] >= 0)
            continue;
        int nr = 0, nc = 0;
        for (int r = r0; r < rows; r++)
            if (find(parent, r) == root) {
                a->row_local[r] = nr;
                a->comp_rows[nr++] = r;
            }
        for (int e = 0; e < edge_count; e++) {
            if (a->root_of_edge[e] != root)
                continue;
            int c = edges[e].col;
            if (a->col_local[c] < 0) {
                a->col_local[c] = nc;
                a->comp_cols[nc++] = c;
            }
        }
        if (nc == 0)
            continue;
        /* matrix nr x (nc + nr): real columns, then one "unassigned" column per row */
        int m = nc + nr;
        for (int i = 0; i < nr; i++)
            for (int j = 0; j < m; j++)
                a->cost[(size_t)i * (size_t)m + (size_t)j] =
                    j >= nc ? (j - nc == i ? unassigned[a->comp_rows[i]] : BIG / 16) : BIG / 16;
        for (int e = 0; e < edge_count; e++) {
            if (a->root_of_edge[e] != root)
                continue;
            int i = a->row_local[edges[e].row], j = a->col_local[edges[e].col];
            double *cell = &a->cost[(size_t)i * (size_t)m + (size_t)j];
            if (edges[e].cost < *cell)
                *cell = edges[e].cost;
        }
        km_assignment_solve(a->cost, nr, m, a->workspace, a->match);
        for (int i = 0; i < nr; i++) {
            int j = a->match[i];
            int r = a->comp_rows[i];
            if (j < nc && a->cost[(size_t)i * (size_t)m + (size_t)j] < BIG / 32)
                row_to_col[r] = a->comp_cols[j];
        }
        for (int j = 0; j < nc; j++)
            a->col_local[a->comp_cols[j]] = -2; /* done */
    }
}

int skel_cluster(const km_vec3 *pos, const bool *use, int n, double link_m, int *cluster,
                 int *work)
{
    /* work = union-find parents */
    for (int i = 0; i < n; i++)
        work[i] = i;
    const double l2 = link_m * link_m;
    for (int i = 0; i < n; i++) {
        if (!use[i])
            continue;
        for (int j = i + 1; j < n; j++) {
            if (!use[j])
                continue;
            km_vec3 d = km_vec3_sub(pos[i], pos[j]);
            if (km_vec3_dot(d, d) <= l2) {
                int x = find(work, i), y = find(work, j);
                if (x != y)
                    work[x] = y;
            }
        }
    }
    int count = 0;
    for (int i = 0; i < n; i++)
        cluster[i] = -1;
    for (int i = 0; i < n; i++) {
        if (!use[i])
            continue;
        int r = find(work, i);
        if (cluster[r] < 0 || r == i) {
            if (cluster[r] < 0)
                cluster[r] = count++;
        }
        cluster[i] = cluster[r];
    }
    return count;
}
