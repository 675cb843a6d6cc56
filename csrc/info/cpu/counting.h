// Counting: the labels of a row, the thread-local transition histograms and their tile counter,
// the plan of (neuron block x sequence chunk) tasks, and the counting pass over x that bins and
// counts at once.
// Included by info_kernels.cpp inside pyprune::cpu_<capability>::{anonymous}: compiled once per
// CPU capability with that capability's flags; the system headers come from the .cpp.
#pragma once

// Scratch of one thread for count_rows: the bins of the last history + 1 rows (a ring, uint16
// [history + 1][W]) and a tile of transition cells [rows][W] waiting to be counted. Cells are
// neuron-local indices: uint16 while a neuron's transition histogram has at most 2^16 cells.
template <typename cell_t>
struct CountScratch {
  static constexpr int64_t kTileBytes = 32 * 1024;
  int64_t tile_rows;
  LineAligned<uint16_t> codes;
  LineAligned<cell_t> tile;
  CountScratch(int64_t history, int64_t width)
      : tile_rows(
            std::max<int64_t>(16, kTileBytes / (std::max<int64_t>(width, 1) * sizeof(cell_t)))),
        codes((history + 1) * width),
        tile(tile_rows * width) {}
};

// Adds the cells of a tile [rows][W] to the W histograms [W][tcells], eight lanes at a time, row
// by row: consecutive increments never hit the same histogram, so no increment waits on the store
// before it, and eight small histograms (B = 8, K = 10: 20 KB) stay in L1. Lanes left over after
// the last eight are counted row by row.
template <typename cell_t>
void count_tile(const cell_t* tile, int64_t rows, int64_t width, int64_t tcells,
                uint32_t* histograms) {
  constexpr int64_t kLanes = 8;
  int64_t g = 0;
  for (; g + kLanes <= width; g += kLanes) {
    // One base register per lane, so each increment is a load and an add to memory. The empty
    // asm hides that the bases are tcells apart; GCC would otherwise rebuild every address from
    // one base with an extra add.
    uint32_t* h[kLanes];
    for (int64_t j = 0; j < kLanes; ++j) {
      h[j] = histograms + (g + j) * tcells;
      asm("" : "+r"(h[j]));
    }
    const cell_t* c = tile + g;
    for (int64_t r = 0; r < rows; ++r, c += width)
      for (int64_t j = 0; j < kLanes; ++j) ++h[j][c[j]];
  }
  for (int64_t r = 0; r < rows; ++r)
    for (int64_t w = g; w < width; ++w) ++histograms[w * tcells + tile[r * width + w]];
}

// Counts the rows of sequences [s0, s1) for W neurons into local histograms.
// bins_of(s, t, out) fills the W bins of row (s, t) and returns true on bad input;
// label_seq(s) maps s to the sequence whose labels are used (the permutation test shuffles it).
//
// Row by row, the row is binned and each lane's transition cell computed, both vectorised across
// the W lanes, into a tile; a full tile is counted by count_tile. A lane's history state, its
// last k bins as base-B digits (newest lowest), is read off the ring of the k rows before.
template <typename cell_t, typename BinsOf, typename LabelSeq>
void count_rows(const InfoShape& shape, int64_t s0, int64_t s1, int64_t width, const Labels& labels,
                BinsOf bins_of, LabelSeq label_seq, uint32_t* transitions, uint32_t* joint,
                CountScratch<cell_t>& scratch, bool& bad_x, bool& bad_label) {
  const int64_t steps = shape.steps, history = shape.history, ring = history + 1;
  const uint32_t classes = shape.classes, bin_count = shape.bins;
  const int64_t tcells = shape.transition_cells(), jcells = shape.joint_cells();
  uint16_t* codes = scratch.codes.data();
  cell_t* tile = scratch.tile.data();
  // cell = (state * B + x_t) * K + y_{t-1} with state = sum over j = 1..k of x_{t-j} B^(j-1):
  // the bin j rows back weighs B^j K.
  std::vector<uint32_t> weight(history + 1, classes);
  for (int64_t j = 1; j <= history; ++j) weight[j] = weight[j - 1] * bin_count;
  auto ring_row = [&](int64_t slot) { return codes + (slot < 0 ? slot + ring : slot) * width; };
  int64_t filled = 0;
  for (int64_t s = s0; s < s1; ++s) {
    const int64_t* ys = labels.data ? labels.data + label_seq(s) * labels.seq_stride : nullptr;
    uint32_t y_prev = 0;
    for (int64_t t = 0, slot = 0; t < steps; ++t, slot = slot + 1 == ring ? 0 : slot + 1) {
      int64_t y = ys ? ys[t * labels.step_stride] : 0;
      if (static_cast<uint64_t>(y) >= static_cast<uint64_t>(classes)) {
        bad_label = true;
        y = 0;
      }
      uint16_t* row = codes + slot * width;
      bad_x |= bins_of(s, t, row);
      // Transition (state at t-1, bin at t, label at t-1) for t >= history.
      if (history > 0 && t >= history) {
        cell_t* out = tile + filled * width;
        const uint16_t* newest = ring_row(slot - 1);
        for (int64_t w = 0; w < width; ++w)
          out[w] = newest[w] * weight[1] + row[w] * classes + y_prev;
        for (int64_t j = 2; j <= history; ++j) {
          const uint16_t* past = ring_row(slot - j);
          for (int64_t w = 0; w < width; ++w) out[w] += past[w] * weight[j];
        }
        if (++filled == scratch.tile_rows) {
          count_tile(tile, filled, width, tcells, transitions);
          filled = 0;
        }
      }
      if (shape.step_outside_transitions(t))
        for (int64_t w = 0; w < width; ++w) ++joint[w * jcells + row[w] * classes + y];
      y_prev = static_cast<uint32_t>(y);
    }
  }
  count_tile(tile, filled, width, tcells, transitions);
}

// out[i] += local[i] for i < n; atomic where other threads may add to out at the same time.
inline void add_counts(const uint32_t* local, int64_t n, int64_t* out, bool atomic) {
  if (!atomic) {
    for (int64_t i = 0; i < n; ++i) out[i] += local[i];
    return;
  }
  for (int64_t i = 0; i < n; ++i) {
    if (local[i] == 0) continue;
#pragma omp atomic
    out[i] += local[i];
  }
}

// The (x_t, y_t) histogram = the transition histogram summed over next bins and older history,
// plus the side histogram of the steps no transition starts from.
template <typename count_t, typename total_t>
void fold_joint(const InfoShape& shape, const count_t* transitions, total_t* joint) {
  const int64_t classes = shape.classes, bins = shape.bins;
  for (int64_t h = 0; h < shape.transition_cells() / (bins * classes); ++h) {
    const int64_t current = h % bins;
    for (int64_t x = 0; x < bins; ++x)
      for (int64_t y = 0; y < classes; ++y)
        joint[current * classes + y] += transitions[(h * bins + x) * classes + y];
  }
}

struct Plan {
  int64_t width, blocks, seq_chunks, seq_per_chunk;
};

Plan plan_tasks(const InfoShape& shape, int64_t bytes_per_neuron_extra = 0) {
  const int64_t bytes = 4 * (shape.transition_cells() + shape.joint_cells()) + bytes_per_neuron_extra;
  // Whole rows read contiguously are best when all histograms fit in L2; otherwise blocks of
  // up to 64 neurons whose histograms fit comfortably.
  int64_t width = 64;
  while (width > 1 && width * bytes > kLocalHistogramBytes) width /= 2;
  if (shape.neurons * bytes <= kL2Bytes) width = shape.neurons;
  width = std::clamp<int64_t>(width, 1, std::max<int64_t>(shape.neurons, 1));  // >= 1: no neurons too
  Plan p;
  p.width = width;
  p.blocks = ceil_div(shape.neurons, width);
  // Chunks of sequences spread a few blocks over the threads. A chunk costs the scan and reset
  // of its block's local histograms, and split blocks are added with atomics: keep chunks of at
  // least ~2 rows per transition cell, so that this stays a fraction of the counting.
  const int64_t wanted = 16 * num_threads();
  const int64_t min_chunk_rows = std::max<int64_t>(1024, 2 * shape.transition_cells());
  const int64_t most = std::max<int64_t>(1, shape.sequences * shape.steps / min_chunk_rows);
  p.seq_chunks = std::max<int64_t>(
      1, std::min({shape.sequences, ceil_div(wanted, std::max<int64_t>(p.blocks, 1)), most}));
  p.seq_chunks = std::max(p.seq_chunks, ceil_div(shape.sequences * shape.steps, kMaxLocalRows));
  p.seq_per_chunk = ceil_div(shape.sequences, p.seq_chunks);
  return p;
}

// Calls f(cell_t{}) with the narrowest type that holds a neuron-local transition cell.
template <typename F>
void dispatch_cell_type(const InfoShape& shape, F f) {
  if (shape.transition_cells() <= (int64_t{1} << 16))
    f(uint16_t{});
  else
    f(uint32_t{});
}

// Runs the counting pass and adds its counts to t_out (transitions [N][states*B*K]) and j_out
// (joint (x_t, y_t) [N][B*K]); returns what bad input it met. Local transitions are folded into the joint counts as they are
// added, so the joint counts take only this pass's transitions.
template <typename scalar_t, typename cell_t>
InfoFlags count_all(const scalar_t* xp, const Labels& labels, const Bins& b, const InfoShape& shape,
                    int64_t* t_out, int64_t* j_out) {
  const int64_t tcells = shape.transition_cells(), jcells = shape.joint_cells();
  const Plan plan = plan_tasks(shape);
  const int64_t last_row = std::max<int64_t>(shape.sequences * shape.steps - 1, 0);
  bool bad_x = false, bad_label = false;
  // Whether a block's sequences are split over tasks, which two threads may run at once: then
  // local counts are added with atomics. Otherwise a block is one thread's alone, and plain adds
  // are much faster (a small batch into large histograms spends most of its time in these adds).
  const bool shared_blocks = plan.seq_chunks > 1;
  // Each thread's last local histograms, added to the output after all tasks (see below).
  const int team = num_threads();
  std::vector<const uint32_t*> last_t(team), last_j(team);
  std::vector<int64_t> last_n0(team, -1);

#pragma omp parallel num_threads(team) reduction(|| : bad_x, bad_label)
  {
    std::vector<uint32_t> t_local(plan.width * tcells), j_local(plan.width * jcells);
    CountScratch<cell_t> scratch(shape.history, plan.width);
    RowBinner binner(b, plan.width);
    // The local histograms keep counting while a thread's tasks stay in one neuron block, and
    // are added to the output when the block changes.
    int64_t local_n0 = -1, local_rows = 0;
    // The local joint counts (at most kMaxLocalRows a cell) take the local transitions.
    auto fold_local = [&] {
      if (local_n0 < 0 || shape.history == 0) return;
      const int64_t local_width = std::min(plan.width, shape.neurons - local_n0);
      for (int64_t w = 0; w < local_width; ++w)
        fold_joint(shape, t_local.data() + w * tcells, j_local.data() + w * jcells);
    };
    auto merge_local = [&] {
      if (local_n0 < 0) return;
      fold_local();
      const int64_t local_width = std::min(plan.width, shape.neurons - local_n0);
      add_counts(t_local.data(), local_width * tcells, t_out + local_n0 * tcells, shared_blocks);
      add_counts(j_local.data(), local_width * jcells, j_out + local_n0 * jcells, shared_blocks);
      std::fill(t_local.begin(), t_local.end(), 0u);
      std::fill(j_local.begin(), j_local.end(), 0u);
      local_n0 = -1;
      local_rows = 0;
    };
#pragma omp for schedule(dynamic, 1)
    for (int64_t task = 0; task < plan.blocks * plan.seq_chunks; ++task) {
      const int64_t n0 = (task / plan.seq_chunks) * plan.width;
      const int64_t width = std::min(plan.width, shape.neurons - n0);
      const int64_t s0 = (task % plan.seq_chunks) * plan.seq_per_chunk;
      const int64_t s1 = std::min(shape.sequences, s0 + plan.seq_per_chunk);
      if (s0 >= s1) continue;
      const int64_t rows = (s1 - s0) * shape.steps;
      if (n0 != local_n0 || local_rows + rows > kMaxLocalRows) {
        merge_local();
        local_n0 = n0;
        binner.set_block(n0, width);
      }
      local_rows += rows;
      const bool whole_rows = width == shape.neurons;
      auto bins_of = [&](int64_t s, int64_t t, uint16_t* out) {
        const int64_t r = s * shape.steps + t;
        const int64_t ahead = std::min(r + kPrefetchRows, last_row);
        const char* p = reinterpret_cast<const char*>(xp + ahead * shape.neurons + n0);
        for (int64_t i = 0; i < width * int64_t{sizeof(scalar_t)}; i += 64) {
          if (whole_rows)
            __builtin_prefetch(p + i, 0, 2);
          else
            __builtin_prefetch(p + i);
        }
        return binner(xp + r * shape.neurons + n0, out);
      };
      count_rows(shape, s0, s1, width, labels, bins_of, [](int64_t s) { return s; },
                 t_local.data(), j_local.data(), scratch, bad_x, bad_label);
    }
    // The last blocks: every thread usually ends in the same one, and adding them all at once
    // with atomics made the threads fight for the same lines (a sizeable share of the counting
    // time at small N). Each thread instead adds every thread's counts for its share of the
    // neurons, which it alone writes.
    const int me = omp_get_thread_num();
    last_t[me] = t_local.data();
    last_j[me] = j_local.data();
    last_n0[me] = local_n0;
#pragma omp barrier
#pragma omp for schedule(static)
    for (int64_t n = 0; n < shape.neurons; ++n) {
      for (int other = 0; other < team; ++other) {
        const int64_t w = n - last_n0[other];
        if (last_n0[other] < 0 || w < 0 || w >= plan.width) continue;
        add_counts(last_t[other] + w * tcells, tcells, t_out + n * tcells, false);
        add_counts(last_j[other] + w * jcells, jcells, j_out + n * jcells, false);
        if (shape.history > 0) fold_joint(shape, last_t[other] + w * tcells, j_out + n * jcells);
      }
    }
  }
  return {bad_x, bad_label};
}
