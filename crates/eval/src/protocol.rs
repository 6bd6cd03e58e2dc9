//! Evaluation protocols: which users are held out, what the model trains on, what each test
//! case's history, candidates and relevant items are.

use std::collections::{BTreeMap, HashMap, HashSet};

use serde::Serialize;
use warmstart_core::{
    CsrMatrix, Dataset, EventTime, HistoryWeights, InteractionRow, ItemId, Rng, SiteId, Split, UserId,
};

use crate::{Error, Result};

/// The protocols, as named on the command line.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Protocol {
    /// Cross-site cold start: rank the whole target catalog from other-site history.
    ColdStart,
    /// CDRIB: each test row's item against 999 uniformly sampled target items.
    Cdrib,
    /// Leave-one-out next item (URLLM's Table 3 setting).
    Loo,
    /// Random 70/10/20 split of interactions (single-site sanity check).
    Random,
}

impl std::str::FromStr for Protocol {
    type Err = Error;
    fn from_str(s: &str) -> Result<Self> {
        Ok(match s {
            "cold-start" => Protocol::ColdStart,
            "cdrib" => Protocol::Cdrib,
            "loo" => Protocol::Loo,
            "random" => Protocol::Random,
            _ => return Err(Error::Config(format!("unknown protocol `{s}` (cold-start, cdrib, loo, random)"))),
        })
    }
}

impl Protocol {
    /// Command-line name.
    pub fn as_str(self) -> &'static str {
        match self {
            Protocol::ColdStart => "cold-start",
            Protocol::Cdrib => "cdrib",
            Protocol::Loo => "loo",
            Protocol::Random => "random",
        }
    }
}

/// Which items a case ranks.
#[derive(Debug, Clone, PartialEq)]
pub enum Candidates {
    /// The whole catalog of the target site.
    Site,
    /// A given list (e.g. the target item plus 999 sampled items).
    List(Vec<ItemId>),
}

/// One ranking to evaluate.
#[derive(Debug, Clone)]
pub struct Case {
    /// The user.
    pub user: UserId,
    /// What the model sees: (item, weight).
    pub history: Vec<(ItemId, f32)>,
    /// Relevant items (distinct).
    pub relevant: Vec<ItemId>,
    /// What is ranked.
    pub candidates: Candidates,
    /// Items removed from the candidates (already owned).
    pub exclude: Vec<ItemId>,
    /// History items on sites other than the target (for the history-length segments).
    pub other_site_history: usize,
}

/// A train/evaluate unit: one training matrix and the cases it is judged on.
#[derive(Debug, Clone)]
pub struct Task {
    /// e.g. `amazon-art→amazon-office`.
    pub name: String,
    /// Target site.
    pub target: SiteId,
    /// User × item training matrix (binary).
    pub train: CsrMatrix,
    /// Test cases.
    pub test: Vec<Case>,
    /// Validation cases (for model selection).
    pub valid: Vec<Case>,
    /// Notes on choices made (documented in the results).
    pub notes: Vec<String>,
}

/// Protocol options.
#[derive(Debug, Clone)]
pub struct ProtocolOptions {
    /// Seed of every random choice.
    pub seed: u64,
    /// Sampled negatives per test row (CDRIB protocol).
    pub negatives: usize,
    /// Share of eligible users held out for test and for validation when the data has no
    /// published split.
    pub holdout_share: f64,
    /// Weights of cross-site history interactions (kind, rating, recency).
    pub history: HistoryWeights,
}

impl Default for ProtocolOptions {
    fn default() -> Self {
        ProtocolOptions { seed: 42, negatives: 999, holdout_share: 0.1, history: HistoryWeights::default() }
    }
}

fn per_user(d: &Dataset) -> Vec<Vec<&InteractionRow>> {
    let mut by: Vec<Vec<&InteractionRow>> = vec![Vec::new(); d.n_users()];
    for r in &d.interactions {
        by[r.user as usize].push(r);
    }
    by
}

fn distinct(items: impl IntoIterator<Item = ItemId>) -> Vec<ItemId> {
    let mut v: Vec<ItemId> = items.into_iter().collect();
    v.sort_unstable();
    v.dedup();
    v
}

fn binary_matrix(d: &Dataset, keep: impl Fn(&InteractionRow) -> bool) -> CsrMatrix {
    d.matrix(keep, |_| 1.0).map_values(|_| 1.0)
}

/// Ordered pairs of distinct sites (source, target) of a dataset.
pub fn directions(d: &Dataset) -> Vec<(SiteId, SiteId)> {
    let n = d.sites.len() as SiteId;
    (0..n).flat_map(|a| (0..n).filter(move |&b| b != a).map(move |b| (a, b))).collect()
}

/// Held-out users of a cold-start direction: the published split where the data has one
/// (users with no training interaction on the target and some in the test / validation
/// split), else a seeded random share of the users active on both sites.
fn held_out_users(
    d: &Dataset,
    source: SiteId,
    target: SiteId,
    opts: &ProtocolOptions,
    notes: &mut Vec<String>,
) -> (Vec<UserId>, Vec<UserId>, bool) {
    let test = d.users_with_split_on_site(target, Split::Test);
    if !test.is_empty() {
        notes.push("held-out users: the dataset's published test/validation split; a test user's relevant items are their target-site test rows (validation rows for validation users)".into());
        return (test, d.users_with_split_on_site(target, Split::Valid), true);
    }
    let us = d.user_sites();
    let mut eligible: Vec<UserId> =
        (0..d.n_users() as UserId).filter(|&u| us.has(u, source) && us.has(u, target)).collect();
    Rng::new(opts.seed).shuffle(&mut eligible);
    let n = ((eligible.len() as f64) * opts.holdout_share).round() as usize;
    notes.push(format!(
        "held-out users: random {:.0}% test and {:.0}% validation of the {} users active on both sites (seed {})",
        opts.holdout_share * 100.0,
        opts.holdout_share * 100.0,
        eligible.len(),
        opts.seed
    ));
    (eligible[..n].to_vec(), eligible[n..(2 * n).min(eligible.len())].to_vec(), false)
}

/// Cross-site cold start for `source → target` with the given held-out users (or the
/// default choice when `None`).
pub fn cold_start(
    d: &Dataset,
    source: SiteId,
    target: SiteId,
    held: Option<(Vec<UserId>, Vec<UserId>)>,
    opts: &ProtocolOptions,
) -> Task {
    let mut notes = Vec::new();
    let (test_users, valid_users, published) = match held {
        Some((t, v)) => (t, v, false),
        None => held_out_users(d, source, target, opts, &mut notes),
    };
    let trange = d.sites[target as usize].items.clone();
    let srange = d.sites[source as usize].items.clone();
    let held: HashSet<UserId> = test_users.iter().chain(&valid_users).copied().collect();
    let train = binary_matrix(d, |r| !(held.contains(&r.user) && trange.contains(&r.item)));
    notes.push("training: everyone's interactions except the held-out users' target-site ones".into());
    let by = per_user(d);
    let make = |users: &[UserId], split: Split| -> Vec<Case> {
        users
            .iter()
            .filter_map(|&u| {
                let rows = &by[u as usize];
                let history = opts.history.weigh(rows.iter().filter(|r| srange.contains(&r.item)).copied());
                let relevant = distinct(
                    rows.iter()
                        .filter(|r| trange.contains(&r.item) && (!published || r.split == split))
                        .map(|r| r.item),
                );
                (!relevant.is_empty()).then(|| Case {
                    user: u,
                    other_site_history: history.len(),
                    history,
                    relevant,
                    candidates: Candidates::Site,
                    exclude: Vec::new(),
                })
            })
            .collect()
    };
    Task {
        name: format!("{}→{}", d.sites[source as usize].key, d.sites[target as usize].key),
        target,
        train,
        test: make(&test_users, Split::Test),
        valid: make(&valid_users, Split::Valid),
        notes,
    }
}

/// The CDRIB protocol for `source → target`, as CDRIB's released loader builds its test
/// (`utils/loader.py`, `read_test_data`): every held-out row whose item occurs in the target
/// domain's training rows is a case, its item ranked against `opts.negatives` items drawn
/// uniformly (with replacement) from those training items, never one of the user's own
/// held-out items of that split.
pub fn cdrib(d: &Dataset, source: SiteId, target: SiteId, opts: &ProtocolOptions) -> Task {
    let mut task = cold_start(d, source, target, None, opts);
    let trange = d.sites[target as usize].items.clone();
    let by = per_user(d);
    // With a published split, test rows are the test-split rows; otherwise every target row.
    let has_split = d.interactions.iter().any(|r| r.split == Split::Test && trange.contains(&r.item));
    let (ts, vs) = if has_split { (Split::Test, Split::Valid) } else { (Split::Train, Split::Train) };
    // the negatives' pool: target items with a training row (the whole catalog without a split)
    let pool: Vec<ItemId> = if has_split {
        distinct(d.interactions.iter().filter(|r| r.split == Split::Train && trange.contains(&r.item)).map(|r| r.item))
    } else {
        trange.clone().collect()
    };
    let mut rng = Rng::new(opts.seed ^ 0xcd21b);
    let mut explode = |cases: &[Case], split: Split| -> (Vec<Case>, usize) {
        let mut out = Vec::new();
        let mut dropped = 0usize;
        for c in cases {
            let own: Vec<ItemId> = distinct(
                by[c.user as usize]
                    .iter()
                    .filter(|r| trange.contains(&r.item) && (r.split == split || split == Split::Train))
                    .map(|r| r.item),
            );
            if own.len() >= pool.len() {
                dropped += own.len();
                continue; // nothing left to draw negatives from
            }
            for &item in &own {
                if pool.binary_search(&item).is_err() {
                    dropped += 1;
                    continue;
                }
                let mut list = Vec::with_capacity(opts.negatives + 1);
                list.push(item);
                while list.len() <= opts.negatives {
                    let neg = pool[rng.below(pool.len())];
                    if own.binary_search(&neg).is_err() {
                        list.push(neg);
                    }
                }
                out.push(Case { relevant: vec![item], candidates: Candidates::List(list), ..c.clone() });
            }
        }
        (out, dropped)
    };
    let (test, dropped_test) = explode(&task.test, ts);
    task.test = test;
    task.valid = explode(&task.valid, vs).0;
    task.notes.push(format!(
        "each held-out row's item ranked against {} items drawn uniformly from the target's training items, none of them the user's own held-out items (seed {}); metrics averaged over rows",
        opts.negatives, opts.seed
    ));
    task.notes.push(format!(
        "{}: {dropped_test} test rows whose item has no training row are left out, as CDRIB's loader does",
        task.name
    ));
    task
}

/// Leave-one-out next item on sequence data, as URLLM's released code evaluates the Amazon
/// Art/Office split: every item at a held-out user's last position is a target of its own
/// case (a test line of that data is one case: two lines of one user with two targets in one
/// shop are two cases), everything earlier is history; a target is ranked among its whole
/// site's catalog with nothing excluded; models train on the training users only (held-out
/// users are folded in from their histories).
pub fn leave_one_out(d: &Dataset, target: SiteId, opts: &ProtocolOptions) -> Result<Task> {
    let by = per_user(d);
    let seq = |r: &InteractionRow| match r.time {
        Some(EventTime::Sequence(s)) | Some(EventTime::Timestamp(s)) => Some(s),
        None => None,
    };
    if !d.interactions.iter().any(|r| seq(r).is_some()) {
        return Err(Error::Config(
            "leave-one-out needs ordered interactions (timestamps or sequence positions)".into(),
        ));
    }
    let trange = d.sites[target as usize].items.clone();
    let test_users: HashSet<UserId> =
        d.interactions.iter().filter(|r| r.split == Split::Test).map(|r| r.user).collect();
    let valid_users: HashSet<UserId> =
        d.interactions.iter().filter(|r| r.split == Split::Valid).map(|r| r.user).collect();
    // last position per held-out user
    let mut last: HashMap<UserId, i64> = HashMap::new();
    for r in &d.interactions {
        if test_users.contains(&r.user) || valid_users.contains(&r.user) {
            if let Some(s) = seq(r) {
                let e = last.entry(r.user).or_insert(s);
                *e = (*e).max(s);
            }
        }
    }
    let is_target = |r: &InteractionRow| last.get(&r.user).is_some_and(|&l| seq(r) == Some(l));
    let train = binary_matrix(d, |r| !test_users.contains(&r.user) && !valid_users.contains(&r.user));
    let make = |users: &HashSet<UserId>| -> Vec<Case> {
        let mut us: Vec<UserId> = users.iter().copied().collect();
        us.sort_unstable();
        us.into_iter()
            .flat_map(|u| {
                let rows = &by[u as usize];
                let targets =
                    distinct(rows.iter().filter(|r| is_target(r) && trange.contains(&r.item)).map(|r| r.item));
                let hist_rows: Vec<&&InteractionRow> = rows.iter().filter(|r| !is_target(r)).collect();
                let history = opts.history.weigh(hist_rows.iter().map(|r| **r));
                let other = distinct(hist_rows.iter().filter(|r| !trange.contains(&r.item)).map(|r| r.item)).len();
                targets
                    .into_iter()
                    .map(|target| Case {
                        user: u,
                        history: history.clone(),
                        relevant: vec![target],
                        candidates: Candidates::Site,
                        exclude: Vec::new(),
                        other_site_history: other,
                    })
                    .collect::<Vec<_>>()
            })
            .collect()
    };
    Ok(Task {
        name: format!("loo→{}", d.sites[target as usize].key),
        target,
        train,
        test: make(&test_users),
        valid: make(&valid_users),
        notes: vec![
            "leave-one-out (URLLM's protocol): every item at a held-out user's last sequence position is the target of its own case; all earlier items of both sites are history".into(),
            "the target is ranked among every item of its site; history items are not excluded (repeat purchases stay possible); ties are broken at random (URLLM's code counts them for the target)".into(),
            "training: the training users only; held-out users are folded in from their histories".into(),
        ],
    })
}

/// Random split of one site's interactions: 70% train, 10% validation, 20% test per
/// interaction (seeded); a user's training items are excluded from their ranking.
pub fn random_split(d: &Dataset, site: SiteId, opts: &ProtocolOptions) -> Task {
    let range = d.sites[site as usize].items.clone();
    let mut rng = Rng::new(opts.seed);
    let assign: Vec<u8> = d
        .interactions
        .iter()
        .map(|_| {
            let x = rng.unit_f32();
            if x < 0.2 {
                2
            } else if x < 0.3 {
                1
            } else {
                0
            }
        })
        .collect();
    let train = {
        let trip: Vec<(u32, u32, f32)> = d
            .interactions
            .iter()
            .zip(&assign)
            .filter(|(r, a)| **a == 0 && range.contains(&r.item))
            .map(|(r, _)| (r.user, r.item, 1.0))
            .collect();
        CsrMatrix::from_triplets(d.n_users(), d.n_items(), &trip).map_values(|_| 1.0)
    };
    let mut split_items: Vec<BTreeMap<u8, Vec<ItemId>>> = vec![BTreeMap::new(); d.n_users()];
    for (r, a) in d.interactions.iter().zip(&assign) {
        if range.contains(&r.item) {
            split_items[r.user as usize].entry(*a).or_default().push(r.item);
        }
    }
    let make = |which: u8| -> Vec<Case> {
        (0..d.n_users() as UserId)
            .filter_map(|u| {
                let s = &split_items[u as usize];
                let relevant = distinct(s.get(&which)?.iter().copied());
                let history: Vec<(ItemId, f32)> =
                    distinct(s.get(&0).cloned().unwrap_or_default()).into_iter().map(|i| (i, 1.0)).collect();
                let exclude: Vec<ItemId> = history.iter().map(|h| h.0).collect();
                let relevant: Vec<ItemId> =
                    relevant.into_iter().filter(|i| exclude.binary_search(i).is_err()).collect();
                (!relevant.is_empty()).then_some(Case {
                    user: u,
                    history,
                    relevant,
                    candidates: Candidates::Site,
                    exclude,
                    other_site_history: 0,
                })
            })
            .collect()
    };
    Task {
        name: format!("random→{}", d.sites[site as usize].key),
        target: site,
        train,
        test: make(2),
        valid: make(1),
        notes: vec![format!(
            "random 70/10/20 split of interactions (seed {}); every interaction is a positive; training items excluded",
            opts.seed
        )],
    }
}

/// k folds over the users active on both sites: fold `f` holds out its users (no separate
/// validation set).
pub fn cold_start_folds(
    d: &Dataset,
    source: SiteId,
    target: SiteId,
    k: usize,
    opts: &ProtocolOptions,
) -> Result<Vec<Task>> {
    if k < 2 {
        return Err(Error::Config("--folds must be at least 2".into()));
    }
    let us = d.user_sites();
    let mut users: Vec<UserId> =
        (0..d.n_users() as UserId).filter(|&u| us.has(u, source) && us.has(u, target)).collect();
    if users.len() < k {
        return Err(Error::Config(format!(
            "only {} users are active on both sites, fewer than {k} folds",
            users.len()
        )));
    }
    Rng::new(opts.seed).shuffle(&mut users);
    Ok((0..k)
        .map(|f| {
            let fold: Vec<UserId> = users.iter().enumerate().filter(|(i, _)| i % k == f).map(|(_, &u)| u).collect();
            let mut t = cold_start(d, source, target, Some((fold, Vec::new())), opts);
            t.name = format!("{} fold {}/{k}", t.name, f + 1);
            t.notes.push(format!(
                "{k}-fold cross-validation over the {} users active on both sites (seed {})",
                users.len(),
                opts.seed
            ));
            t
        })
        .collect())
}

/// The hold-out of a served model: one fit for every site. A seeded share
/// (`opts.holdout_share`) of the users active on two or more sites is held out; each of them
/// gets one target site drawn at random, and their target-site interactions leave the
/// training matrix. One task per target site (named `*→site`), all with the same training
/// matrix; a case's history is the user's interactions on every other site.
pub fn serving_holdout(d: &Dataset, opts: &ProtocolOptions) -> Vec<Task> {
    let by = per_user(d);
    let mut rng = Rng::new(opts.seed ^ 0x5e7e);
    let mut eligible: Vec<(UserId, Vec<SiteId>)> = by
        .iter()
        .enumerate()
        .filter_map(|(u, rows)| {
            let sites: Vec<SiteId> = distinct(rows.iter().map(|r| d.site_of(r.item)));
            (sites.len() >= 2).then_some((u as UserId, sites))
        })
        .collect();
    rng.shuffle(&mut eligible);
    let n = ((eligible.len() as f64) * opts.holdout_share).round() as usize;
    let held: HashMap<UserId, SiteId> =
        eligible[..n].iter().map(|(u, sites)| (*u, sites[rng.below(sites.len())])).collect();
    let train = binary_matrix(d, |r| held.get(&r.user) != Some(&d.site_of(r.item)));
    let note = format!(
        "served-model hold-out: {n} of the {} users active on two or more sites (seed {}), each with one random target site hidden from training; one fit serves every site",
        eligible.len(),
        opts.seed
    );
    let mut users: Vec<(&UserId, &SiteId)> = held.iter().collect();
    users.sort_unstable();
    (0..d.sites.len() as SiteId)
        .map(|target| {
            let trange = d.sites[target as usize].items.clone();
            let test = users
                .iter()
                .filter(|(_, t)| **t == target)
                .filter_map(|(&u, _)| {
                    let rows = &by[u as usize];
                    let history = opts.history.weigh(rows.iter().filter(|r| !trange.contains(&r.item)).copied());
                    let relevant = distinct(rows.iter().filter(|r| trange.contains(&r.item)).map(|r| r.item));
                    (!relevant.is_empty() && !history.is_empty()).then(|| Case {
                        user: u,
                        other_site_history: history.len(),
                        history,
                        relevant,
                        candidates: Candidates::Site,
                        exclude: Vec::new(),
                    })
                })
                .collect();
            Task {
                name: format!("*→{}", d.sites[target as usize].key),
                target,
                train: train.clone(),
                test,
                valid: Vec::new(),
                notes: vec![note.clone()],
            }
        })
        .collect()
}
