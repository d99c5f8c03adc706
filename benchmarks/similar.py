"""Similar movies (`recommend --movie`): how well a trained run's cosine over movie embeddings finds what a user
rates next, beside item-item alternatives computed from the same training rows.

Protocol: for every user with test ratings, up to 5 of the movies it rated in training (train + valid, what the
run was fit on) are drawn (seed 0); each one's 10 most similar movies, less the user's training movies, are
compared with the user's test movies: recall@10 (hits / min(10, test movies)), averaged over the queries, then
over users. Differences are paired per user against the run's cosine (what `recommend --movie` serves); within
2 SE is a tie. Also printed: where a known sequel ranks (Star Wars -> The Empire Strikes Back, The Godfather ->
The Godfather: Part II) under each similarity, when the titles are there (ML-100K).

Similarities: the run's cosine of movie embeddings; the cosine after removing the mean movie vector; the
"fold-in" similarity q_j^T (Q^T Q + mu I)^-1 q_m (what one liked movie gives a new user, up to scale) and its
cosine after whitening; item-item cosine of the co-rating counts (an item-kNN's similarity); and, to calibrate
the protocol, the most popular movies whatever the query (no similarity at all), which scores above every
similarity here: recall of a user's next movies rewards popularity, so this protocol does not measure how alike
two movies are, and a similarity that ranks popular movies higher gains on it for that alone.

Franchises (ML-100K titles only): 41 groups of one franchise's films, listed by hand from the titles (FRANCHISES:
the Star Wars trilogy, Godfather I-II, Alien 1-4, Star Trek's 8 films, ...; 105 movies). Each film with training
ratings queries its similar movies; its franchise-mates' mean reciprocal rank there (the query excluded, every
movie with training ratings ranked) is averaged over the films ("franchise MRR"); the SE is over the groups, paired
against the served cosine. A measure popularity does not win (session 50: the most popular movies score 0.021
there, the served cosine 0.217), but a narrow one: 41 groups, so its SEs are 0.01-0.03. "ARP" is the mean
training count of the movies the recall protocol lists (how popular the lists are).

Usage: python benchmarks/similar.py --run runs/ml-100k --data data/prepared/ml-100k  (a few seconds)
"""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np
import pandas as pd

FRANCHISES = {  # session 50's hand-made list of ML-100K's franchises (titles as ML-100K writes them)
    "Star Wars": ["Star Wars", "Empire Strikes Back, The", "Return of the Jedi"],
    "Godfather": ["Godfather, The", "Godfather: Part II, The"],
    "Alien": ["Alien", "Aliens", "Alien 3", "Alien: Resurrection"],
    "Terminator": ["Terminator, The", "Terminator 2: Judgment Day"],
    "Indiana Jones": ["Raiders of the Lost Ark", "Indiana Jones and the Last Crusade"],
    "Die Hard": ["Die Hard", "Die Hard 2", "Die Hard: With a Vengeance"],
    "Batman": ["Batman", "Batman Returns", "Batman Forever", "Batman & Robin"],
    "Star Trek": ["Star Trek: The Motion Picture", "Star Trek: The Wrath of Khan", "Star Trek III: The Search for Spock",
                  "Star Trek IV: The Voyage Home", "Star Trek V: The Final Frontier",
                  "Star Trek VI: The Undiscovered Country", "Star Trek: Generations", "Star Trek: First Contact"],
    "Jurassic Park": ["Jurassic Park", "Lost World: Jurassic Park, The"],
    "Free Willy": ["Free Willy", "Free Willy 2: The Adventure Home", "Free Willy 3: The Rescue"],
    "Home Alone": ["Home Alone", "Home Alone 3"],
    "Three Colors": ["Three Colors: Blue", "Three Colors: White", "Three Colors: Red"],
    "Wallace & Gromit": ["Grand Day Out, A", "Wrong Trousers, The", "Close Shave, A",
                         "Wallace & Gromit: The Best of Aardman Animation"],
    "Jaws": ["Jaws", "Jaws 2", "Jaws 3-D"],
    "Amityville": ["Amityville Horror, The", "Amityville II: The Possession", "Amityville 3-D",
                   "Amityville 1992: It's About Time", "Amityville: A New Generation", "Amityville Curse, The",
                   "Amityville: Dollhouse"],
    "Bond (Brosnan)": ["GoldenEye", "Tomorrow Never Dies"],
    "Evil Dead": ["Evil Dead II", "Army of Darkness"],
    "Elm Street": ["Nightmare on Elm Street, A", "Wes Craven's New Nightmare"],
    "Escape from": ["Escape from New York", "Escape from L.A."],
    "Speed": ["Speed", "Speed 2: Cruise Control"],
    "Under Siege": ["Under Siege", "Under Siege 2: Dark Territory"],
    "Young Guns": ["Young Guns", "Young Guns II"],
    "Highlander": ["Highlander", "Highlander III: The Sorcerer"],
    "Ace Ventura": ["Ace Ventura: Pet Detective", "Ace Ventura: When Nature Calls"],
    "Blues Brothers": ["Blues Brothers, The", "Blues Brothers 2000"],
    "Father of the Bride": ["Father of the Bride", "Father of the Bride Part II"],
    "Brady Bunch": ["Brady Bunch Movie, The", "Very Brady Sequel, A"],
    "Homeward Bound": ["Homeward Bound: The Incredible Journey", "Homeward Bound II: Lost in San Francisco"],
    "Grease": ["Grease", "Grease 2"],
    "Candyman": ["Candyman", "Candyman: Farewell to the Flesh"],
    "Crow": ["Crow, The", "Crow: City of Angels, The"],
    "Prophecy": ["Prophecy, The", "Prophecy II, The"],
    "Tales from the Crypt": ["Tales From the Crypt Presents: Demon Knight",
                             "Tales from the Crypt Presents: Bordello of Blood"],
    "Power Rangers": ["Mighty Morphin Power Rangers: The Movie", "Turbo: A Power Rangers Movie"],
    "Scream": ["Scream", "Scream 2"],
    "Mortal Kombat": ["Mortal Kombat", "Mortal Kombat: Annihilation"],
    "Lawnmower Man": ["Lawnmower Man, The", "Lawnmower Man 2: Beyond Cyberspace"],
    "Aladdin": ["Aladdin", "Aladdin and the King of Thieves"],
    "Herbie": ["Love Bug, The", "Herbie Rides Again"],
    "Jean de Florette": ["Jean de Florette", "Manon of the Spring (Manon des sources)"],
    "Apu trilogy": ["Pather Panchali", "Aparajito", "World of Apu, The (Apur Sansar)"],
}


def franchise_mrr(m: np.ndarray, by_title: dict, trained: np.ndarray) -> dict[str, float]:
    """Each group's mean over its films of the franchise-mates' mean reciprocal rank among the film's similar
    movies (``m``'s row, the query and untrained movies already at -inf), by group name."""
    out = {}
    for g, titles in FRANCHISES.items():
        ids = [by_title[t] for t in titles if t in by_title and trained[by_title[t]]]
        if len(ids) > 1:
            out[g] = float(np.mean([np.mean([1.0 / (1 + int((m[q] > m[q, j]).sum())) for j in ids if j != q])
                                    for q in ids]))
    return out


def normalise(a: np.ndarray) -> np.ndarray:
    n = np.linalg.norm(a, axis=1, keepdims=True)
    n[n == 0] = 1
    return a / n


def similarities(Q: np.ndarray, X) -> dict[str, np.ndarray]:
    out = {"run's cosine (served)": normalise(Q) @ normalise(Q).T}
    qc = Q - Q.mean(0)
    out["cosine less the mean vector"] = normalise(qc) @ normalise(qc).T
    g = Q.T @ Q
    scale = float(np.median(np.linalg.eigvalsh(g)))
    for mu in (0.1, 10.0):
        ainv = np.linalg.inv(g + mu * scale * np.eye(len(g)))
        out[f"fold-in, mu {mu:g} x median eigenvalue"] = Q @ ainv @ Q.T
        w = Q @ np.linalg.cholesky(ainv)
        out[f"whitened cosine, mu {mu:g}"] = normalise(w) @ normalise(w).T
    c = (X.T @ X).toarray().astype(float)
    n = np.diag(c).copy()
    out["co-rating cosine (item-kNN)"] = c / np.sqrt(np.outer(n, n) + 1e-9)
    out["most popular (the query ignored)"] = np.tile(n, (len(n), 1))  # what the protocol gives for no similarity
    return out


def main() -> None:
    import scipy.sparse as sp

    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--run", required=True, help="a trained run folder (its current model is read)")
    ap.add_argument("--data", required=True, help="the prepared dataset it was trained on")
    a = ap.parse_args()
    run, data = Path(a.run) / "current", Path(a.data) / "current"
    Q = np.load(run / "movie_factors.npy", allow_pickle=False)
    splits = {s: pd.read_parquet(data / f"{s}.parquet") for s in ("train", "valid", "test")}
    movies = pd.read_parquet(data / "movies.parquet")
    fit = pd.concat([splits["train"], splits["valid"]])
    n_users = int(max(s.user_idx.max() for s in splits.values())) + 1
    X = sp.csr_matrix((np.ones(len(fit)), (fit.user_idx, fit.movie_idx)), shape=(n_users, Q.shape[0]))
    X.data[:] = 1
    trained = np.asarray(X.sum(0)).ravel() > 0
    seen = X.tolil().rows
    test = splits["test"].groupby("user_idx").movie_idx.apply(set)
    rng = np.random.default_rng(0)
    queries = {u: rng.choice(seen[u], min(5, len(seen[u])), replace=False) for u in test.index if seen[u]}
    title = dict(zip(movies.movie_idx, movies.title))
    by_title = {}
    for i, t in title.items():  # 'Star Wars (1977)' -> 'Star Wars'; the first of a title written twice
        by_title.setdefault(str(t).rsplit(" (", 1)[0].strip(), i)
    count = np.asarray(X.sum(0)).ravel()
    pairs = [("Star Wars", "Empire Strikes Back"), ("Godfather, The", "Godfather: Part II")]
    idx = {t: next((i for i, s in title.items() if str(s).startswith(t)), None) for p in pairs for t in p}
    base = fbase = None
    print(f"{len(queries)} users, up to 5 queries each; recall@10 of the similar list against the user's test movies;"
          f" franchise MRR over {sum(t in by_title for ts in FRANCHISES.values() for t in ts)} films of the titles")
    for name, m in similarities(Q, X).items():
        m = m.copy()
        np.fill_diagonal(m, -np.inf)
        m[:, ~trained] = -np.inf  # recommend --movie never lists a movie no training rating named
        rec, listed = [], []
        for u, qs in queries.items():
            hits = 0.0
            for q in qs:
                row = m[q].copy()
                row[seen[u]] = -np.inf
                top = np.argpartition(-row, 10)[:10]
                hits += len(test[u].intersection(top.tolist())) / min(10, len(test[u]))
                listed.append(count[top].mean())
            rec.append(hits / len(qs))
        rec = np.array(rec)
        base = rec if base is None else base
        d = rec - base
        ranks = ", ".join(f"{b.split(',')[0]} at {int((m[idx[a]] > m[idx[a], idx[b]]).sum()) + 1} for {a.split(',')[0]}"
                          for a, b in pairs if idx[a] is not None and idx[b] is not None)
        fr = franchise_mrr(m, by_title, trained)
        fbase = fr if fbase is None else fbase
        fd = np.array([fr[g] - fbase[g] for g in fr])
        said = f"  franchise MRR {np.mean(list(fr.values())):.3f} ({fd.mean():+.3f}, SE {fd.std() / np.sqrt(max(1, len(fd))):.3f}, " \
            f"{len(fr)} groups)" if fr else ""
        print(f"{name:38s} recall@10 {rec.mean():.4f}  minus served {d.mean():+.4f} (SE {d.std() / np.sqrt(len(d)):.4f})"
              f"  ARP {np.mean(listed):.0f}{said}  {ranks}")


if __name__ == "__main__":
    main()
