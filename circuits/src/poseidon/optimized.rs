//! The equivalent, cheaper form of circomlib's Poseidon permutation that the native hash runs
//! (Poseidon paper, appendix B; the same transformation as circomlib's `poseidon.circom` and
//! circomlibjs' `poseidon_opt.js`, derived here from the plain constants at start-up).
//!
//! Two rewrites, both exact (they change no output, which the tests check against the plain
//! permutation for every width):
//!
//! 1. **Round constants.** In a partial round only `state[0]` goes through the S-box, so the
//!    constants added to elements `1..t` commute with it: they are pushed through the MDS matrix
//!    into the next round. Each partial round then adds a single scalar, and the carry of the
//!    last one lands in the first full round of the second half.
//! 2. **Sparse matrices.** Each partial round's matrix `A` is factored as `A = S * B`, with `S`
//!    sparse (dense first row and column, identity elsewhere: `2t - 1` multiplications instead
//!    of `t^2`) and `B = diag(1, A[1..][1..])`. `B` commutes with a partial round (it leaves
//!    `state[0]` alone and never mixes it into the others), so it is folded into the preceding
//!    round's matrix; going backwards, the last matrix left over, `P = B_0 * M`, replaces `M`
//!    in the last full round of the first half.

use ark_ff::{AdditiveGroup, Field};

use super::params::{PoseidonParams, FULL_ROUNDS};
use crate::Fr;

/// Constants of the optimised permutation for one width `t`.
#[derive(Debug)]
pub(crate) struct OptimizedConstants {
    width: usize,
    /// Round constants of the first `FULL_ROUNDS / 2` rounds, `t` per round (unchanged).
    first_ark: Vec<Fr>,
    /// The MDS matrix `M`, `t x t`, rows first.
    mds: Vec<Fr>,
    /// `P`, used instead of `M` by the last full round of the first half, `t x t`.
    pre_sparse: Vec<Fr>,
    /// One scalar per partial round, added to `state[0]` before its S-box.
    partial_ark: Vec<Fr>,
    /// One sparse matrix per partial round, `2t - 1` elements each: the first row
    /// (`t` elements) then the first column below the diagonal (`t - 1` elements).
    sparse: Vec<Fr>,
    /// Round constants of the last `FULL_ROUNDS / 2` rounds, `t` per round (the first one
    /// carries the constants pushed out of the partial rounds).
    second_ark: Vec<Fr>,
}

type Matrix = Vec<Vec<Fr>>;

impl OptimizedConstants {
    /// Derives the optimised constants from the plain ones, or `None` if a sub-matrix that
    /// must be invertible is not (never the case for circomlib's Cauchy MDS matrices; the
    /// caller then falls back to the plain permutation).
    pub(crate) fn derive(params: &PoseidonParams) -> Option<Self> {
        let t = params.width();
        let half = FULL_ROUNDS / 2;
        let partial = params.partial_rounds();
        let mds: &[Vec<Fr>] = params.mds();
        let mut rounds: Matrix = params.ark().chunks_exact(t).map(<[Fr]>::to_vec).collect();
        if rounds.len() != FULL_ROUNDS + partial {
            return None;
        }

        // 1. Push the constants of elements 1..t of each partial round into the next round.
        for round in half..half + partial {
            let mut carry = rounds.get(round)?.clone();
            *carry.first_mut()? = Fr::ZERO;
            let pushed = mat_vec(mds, &carry);
            for (c, p) in rounds.get_mut(round + 1)?.iter_mut().zip(pushed) {
                *c += p;
            }
            rounds
                .get_mut(round)?
                .iter_mut()
                .skip(1)
                .for_each(|c| *c = Fr::ZERO);
        }
        let partial_ark = rounds
            .get(half..half + partial)?
            .iter()
            .map(|r| r.first().copied())
            .collect::<Option<_>>()?;

        // 2. Factor each partial round's matrix, last round first.
        let mut sparse_rev: Vec<Vec<Fr>> = Vec::with_capacity(partial);
        let mut a: Matrix = mds.to_vec();
        for _ in 0..partial {
            let (sparse, b_inner) = factor(&a)?;
            sparse_rev.push(sparse);
            // The previous round's matrix becomes B * M, with B = diag(1, b_inner).
            a = block_diag_mul(&b_inner, mds);
        }
        let pre_sparse = a;

        Some(Self {
            width: t,
            first_ark: rounds.get(..half)?.concat(),
            mds: mds.concat(),
            pre_sparse: pre_sparse.concat(),
            partial_ark,
            sparse: sparse_rev.into_iter().rev().flatten().collect(),
            second_ark: rounds.get(half + partial..)?.concat(),
        })
    }

    /// Runs the permutation on `state`, through [`permute_fixed`](Self::permute_fixed) for the
    /// width at hand. `false` (and `state` untouched) if `state.len()` is not this width.
    #[must_use]
    pub(crate) fn permute(&self, state: &mut [Fr]) -> bool {
        macro_rules! fixed {
            ($($t:literal)*) => {
                match state.len() {
                    $($t => {
                        if let Ok(fixed) = <&mut [Fr; $t]>::try_from(&mut *state) {
                            return self.permute_fixed(fixed);
                        }
                    })*
                    _ => {}
                }
            };
        }
        const _: () = assert!(super::WIDTH_MAX == 13, "one arm per supported width");
        fixed!(2 3 4 5 6 7 8 9 10 11 12 13);
        false
    }

    /// The permutation for a width known at compile time: each row times the state is one
    /// `sum_of_products`, which accumulates the products unreduced (BN254 leaves two spare
    /// bits, room for three) and reduces once per three terms instead of once per term.
    /// `false` (and `state` untouched) if `T` is not this width; otherwise `true` (the
    /// `else` branches below cannot run: the constants come in exact chunks of `T` and
    /// `2T - 1`, `T >= 2`).
    fn permute_fixed<const T: usize>(&self, state: &mut [Fr; T]) -> bool {
        if self.width != T {
            return false;
        }
        let half = FULL_ROUNDS / 2;
        for (round, constants) in self.first_ark.chunks_exact(T).enumerate() {
            full_round_sboxes(state, constants);
            let matrix = if round + 1 == half {
                &self.pre_sparse
            } else {
                &self.mds
            };
            mat_mul_fixed(matrix, state);
        }
        for (constant, sparse) in self
            .partial_ark
            .iter()
            .zip(self.sparse.chunks_exact(2 * T - 1))
        {
            let (row, column) = sparse.split_at(T);
            // Invariant: `sparse` holds rows of exactly `T`, and `T >= 2`.
            let (Ok(row), Some(first)) = (<&[Fr; T]>::try_from(row), state.first_mut()) else {
                return false;
            };
            *first += constant;
            super::sbox(first);
            let x = *first;
            let mixed = Fr::sum_of_products(row, state);
            for (r, m) in state.iter_mut().skip(1).zip(column) {
                *r += *m * x;
            }
            if let Some(first) = state.first_mut() {
                *first = mixed;
            }
        }
        for constants in self.second_ark.chunks_exact(T) {
            full_round_sboxes(state, constants);
            mat_mul_fixed(&self.mds, state);
        }
        true
    }
}

/// `state <- M * state` for a `T x T` matrix given by its rows, one `sum_of_products` per row.
#[inline(always)]
fn mat_mul_fixed<const T: usize>(matrix: &[Fr], state: &mut [Fr; T]) {
    let mut out = [Fr::ZERO; T];
    for (o, row) in out.iter_mut().zip(matrix.chunks_exact(T)) {
        if let Ok(row) = <&[Fr; T]>::try_from(row) {
            *o = Fr::sum_of_products(row, state);
        }
    }
    *state = out;
}

#[inline(always)]
fn full_round_sboxes(state: &mut [Fr], constants: &[Fr]) {
    for (x, c) in state.iter_mut().zip(constants) {
        *x += c;
        super::sbox(x);
    }
}

/// `m * v` for a square matrix given by rows.
fn mat_vec(m: &[Vec<Fr>], v: &[Fr]) -> Vec<Fr> {
    m.iter()
        .map(|row| row.iter().zip(v).map(|(a, b)| *a * b).sum())
        .collect()
}

/// `diag(1, inner) * m`: row 0 of `m` unchanged, rows `1..t` are `inner * m[1..t]`.
fn block_diag_mul(inner: &[Vec<Fr>], m: &[Vec<Fr>]) -> Matrix {
    let t = m.len();
    let mut out: Matrix = Vec::with_capacity(t);
    out.extend(m.first().cloned());
    let lower = m.get(1..).unwrap_or_default();
    for inner_row in inner {
        let row = (0..t)
            .map(|j| {
                inner_row
                    .iter()
                    .zip(lower)
                    .map(|(a, m_row)| *a * m_row.get(j).copied().unwrap_or_default())
                    .sum()
            })
            .collect();
        out.push(row);
    }
    out
}

/// Factors `a = S * diag(1, a[1..][1..])` and returns `(S packed, a[1..][1..])`, `S` packed as
/// its first row (`a00`, `w`) followed by its first column below the diagonal (`v`), where
/// `v = a[1..][0]` and `w^T = a[0][1..]^T * a[1..][1..]^-1`.
fn factor(a: &[Vec<Fr>]) -> Option<(Vec<Fr>, Matrix)> {
    let (first_row, lower) = a.split_first()?;
    let (&a00, a01) = first_row.split_first()?;
    let a11: Matrix = lower
        .iter()
        .map(|row| row.get(1..).map(<[Fr]>::to_vec))
        .collect::<Option<_>>()?;
    let v: Vec<Fr> = lower
        .iter()
        .map(|row| row.first().copied())
        .collect::<Option<_>>()?;
    let a11_inv = invert(&a11)?;
    let n = a11.len();
    let w: Vec<Fr> = (0..n)
        .map(|j| {
            a01.iter()
                .zip(&a11_inv)
                .map(|(x, inv_row)| *x * inv_row.get(j).copied().unwrap_or_default())
                .sum()
        })
        .collect();
    let mut packed = Vec::with_capacity(2 * n + 1);
    packed.push(a00);
    packed.extend(w);
    packed.extend(v);
    Some((packed, a11))
}

/// Inverse of a square matrix by Gauss-Jordan elimination, `None` if singular.
fn invert(m: &[Vec<Fr>]) -> Option<Matrix> {
    let n = m.len();
    // Augmented rows [m | I].
    let mut rows: Matrix = m
        .iter()
        .enumerate()
        .map(|(i, row)| {
            let mut aug = row.clone();
            aug.extend((0..n).map(|j| if i == j { Fr::ONE } else { Fr::ZERO }));
            aug
        })
        .collect();
    for col in 0..n {
        let pivot = (col..n).find(|&r| {
            rows.get(r)
                .and_then(|row| row.get(col))
                .is_some_and(|x| *x != Fr::ZERO)
        })?;
        rows.swap(col, pivot);
        let inv = rows.get(col)?.get(col)?.inverse()?;
        let pivot_row: Vec<Fr> = rows.get(col)?.iter().map(|x| *x * inv).collect();
        for (r, row) in rows.iter_mut().enumerate() {
            if r == col {
                row.clone_from(&pivot_row);
                continue;
            }
            let factor = *row.get(col)?;
            if factor == Fr::ZERO {
                continue;
            }
            for (x, p) in row.iter_mut().zip(&pivot_row) {
                *x -= factor * p;
            }
        }
    }
    rows.into_iter()
        .map(|row| row.get(n..).map(<[Fr]>::to_vec))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn permute_runs_only_on_a_state_of_its_width() {
        let constants = OptimizedConstants::derive(super::super::params(3).expect("width 3"))
            .expect("circomlib's matrices factor");
        let mut wrong = [Fr::ONE; 4];
        assert!(!constants.permute(&mut wrong));
        assert_eq!(wrong, [Fr::ONE; 4], "a refused state is left as it was");
        let mut state = [Fr::ZERO, Fr::ONE, Fr::from(2u64)];
        assert!(constants.permute(&mut state));
        assert_eq!(
            state[0].to_string(),
            "7853200120776062878684798364095072458815029376092732009249414926327459813530"
        );
    }

    #[test]
    fn inverse_times_matrix_is_identity() {
        let m: Matrix = (0..4u64)
            .map(|i| {
                (0..4u64)
                    .map(|j| Fr::from(i + j + 1).inverse().unwrap_or_default())
                    .collect()
            })
            .collect();
        let inv = invert(&m).expect("Cauchy matrices are invertible");
        for (i, row) in m.iter().enumerate() {
            for j in 0..4 {
                let x: Fr = row
                    .iter()
                    .zip(&inv)
                    .map(|(a, inv_row)| *a * inv_row[j])
                    .sum();
                assert_eq!(x, if i == j { Fr::ONE } else { Fr::ZERO });
            }
        }
        assert!(invert(&[vec![Fr::ONE, Fr::ONE], vec![Fr::ONE, Fr::ONE]]).is_none());
    }

    #[test]
    fn factor_reassembles_the_matrix() {
        let a: Matrix = (0..3u64)
            .map(|i| {
                (0..3u64)
                    .map(|j| Fr::from(i + 3 + j).inverse().unwrap_or_default())
                    .collect()
            })
            .collect();
        let (packed, inner) = factor(&a).expect("invertible");
        let (row, column) = packed.split_at(3);
        // S = [[row], [column_i, e_i]], B = diag(1, inner)
        let s = |i: usize, j: usize| match (i, j) {
            (0, j) => row[j],
            (i, 0) => column[i - 1],
            (i, j) if i == j => Fr::ONE,
            _ => Fr::ZERO,
        };
        let b = |i: usize, j: usize| match (i, j) {
            (0, 0) => Fr::ONE,
            (0, _) | (_, 0) => Fr::ZERO,
            (i, j) => inner[i - 1][j - 1],
        };
        for (i, a_row) in a.iter().enumerate() {
            for (j, a_ij) in a_row.iter().enumerate() {
                let x: Fr = (0..3).map(|k| s(i, k) * b(k, j)).sum();
                assert_eq!(x, *a_ij, "entry ({i}, {j})");
            }
        }
    }
}
