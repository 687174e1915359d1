// The page of a territory: find it, show each indicator at its latest year
// beside its parent's value, its history, its members, and follow changes
// live (GET /indicateurs/flux), on a map too (carte.js). Plain script, no
// build step.
"use strict";

const NIVEAUX = {
  commune: "commune", epci: "EPCI", departement: "département", region: "région", france: "France",
};
const PLURIELS = { commune: "communes", epci: "EPCI", departement: "départements", region: "régions" };
const nombre = new Intl.NumberFormat("fr-FR", { maximumFractionDigits: 2 });
const pourcent = new Intl.NumberFormat("fr-FR", { style: "percent", maximumFractionDigits: 0 });
const $ = (id) => document.getElementById(id);

let catalogue = {};      // indicateur → {libelle, unite}
let flux = [];           // the EventSources of the territory shown and of its parent
let affiche = null;      // {fiche, lignes: Map(clé → ligne), parent: Map(clé → valeur)}

async function json(url) {
  const reponse = await fetch(url);
  if (!reponse.ok) throw new Error(`${reponse.status} ${url}`);
  return reponse.json();
}

// Every row of a query, a page at a time: the API answers 10,000 rows at
// most per page, and names the next one in its Link header.
async function toutes(url) {
  const lignes = [];
  let suivante = `${url}&limit=10000`;
  while (suivante) {
    const reponse = await fetch(suivante);
    if (!reponse.ok) throw new Error(`${reponse.status} ${suivante}`);
    lignes.push(...await reponse.json());
    const lien = /<([^>]+)>;\s*rel="next"/.exec(reponse.headers.get("Link") || "");
    suivante = lien ? lien[1] : null;
  }
  return lignes;
}

// The query parameters that name a territory as an area of /indicateurs.
function zone(t) {
  const p = new URLSearchParams({ niveau: t.niveau });
  if (t.niveau !== "france") p.set(t.niveau, t.code);
  return p;
}

function cle(r) { return `${r.indicateur}|${r.sous_champ}`; }
function libelle(r) {
  const nom = (catalogue[r.indicateur] || {}).libelle || r.indicateur;
  return r.sous_champ === "total" ? nom : `${nom} (${r.sous_champ})`;
}
function valeur(v, unite) {
  if (v === null || v === undefined) return "secret ou non renseigné";
  return unite ? `${nombre.format(v)} ${unite}` : nombre.format(v);
}

async function rechercher(evenement) {
  evenement.preventDefault();
  const q = $("q").value.trim();
  $("etat").textContent = "Recherche…";
  const trouves = await json(`/territoires?${new URLSearchParams({ q })}`);
  $("etat").textContent = trouves.length ? `${trouves.length} territoire(s) trouvé(s)` : "Aucun territoire trouvé";
  const liste = $("resultats");
  liste.replaceChildren(...trouves.map((t) => {
    const item = document.createElement("li");
    const bouton = document.createElement("button");
    bouton.type = "button";
    bouton.textContent = `${t.nom} (${NIVEAUX[t.niveau]}, ${t.code})`;
    bouton.addEventListener("click", () => afficher(t).catch(erreur));
    item.append(bouton);
    return item;
  }));
}

// A territory's address: /?niveau=…&code=… (and the indicator and year
// chosen, on the map or by member), kept in the browser's history, opened
// directly.
function adresse(t, indicateur, annee) {
  const p = new URLSearchParams({ niveau: t.niveau, code: t.code });
  if (indicateur) p.set("indicateur", indicateur);
  if (annee) p.set("annee", annee);
  return `/?${p}`;
}

// A choice made on the page is part of its address (replaced, not a new step).
function choisi(indicateur, annee) {
  history.replaceState(history.state, "", adresse(affiche.fiche, indicateur, annee));
}

async function afficher(t, { garder = true, indicateur = null, annee = null } = {}) {
  const fiche = await json(`/territoires/${t.niveau}/${encodeURIComponent(t.code)}`);
  const ici = adresse(fiche, indicateur, annee);
  if (garder && `${location.pathname}${location.search}` !== ici) {
    history.pushState({ niveau: fiche.niveau, code: fiche.code }, "", ici);
  }
  document.title = `${fiche.nom} (${NIVEAUX[fiche.niveau]}) — Indicateurs territoriaux`;
  const lignes = await toutes(`/indicateurs?${zone(fiche)}`);
  const parent = new Map();
  if (fiche.parent) {
    for (const r of await toutes(`/indicateurs?${zone(fiche.parent)}`)) {
      parent.set(`${cle(r)}|${r.annee}`, r);
    }
  }
  affiche = { fiche, lignes: new Map(), historique: new Map(), parent };
  for (const r of lignes) retenir(r);
  $("fiche").hidden = false;
  $("titre").textContent = `${fiche.nom} (${NIVEAUX[fiche.niveau]}${fiche.niveau === "france" ? "" : `, ${fiche.code}`})`;
  $("parent").textContent = fiche.parent ? `Comparé à : ${fiche.parent.nom} (${NIVEAUX[fiche.parent.niveau]})` : "";
  $("entete-parent").textContent = fiche.parent ? fiche.parent.nom : "Territoire parent";
  $("csv").href = `/indicateurs?${zone(fiche)}&format=csv-fr`;
  $("csv-large").href = `/indicateurs?${zone(fiche)}&format=csv-fr&forme=large`;
  $("parquet").href = `/indicateurs?${zone(fiche)}&format=parquet`;
  tableau();
  await objectifs();
  await classement();
  graphiques();
  await membres(indicateur);
  await laCarte(indicateur, annee);
  suivre(fiche);
  $("titre").focus?.();
}

// Keep a row: the latest year of each indicator for the table, every year for the charts.
function retenir(r) {
  const k = cle(r);
  const dernier = affiche.lignes.get(k);
  if (!dernier || r.annee >= dernier.annee) affiche.lignes.set(k, r);
  if (!affiche.historique.has(k)) affiche.historique.set(k, new Map());
  affiche.historique.get(k).set(r.annee, r.valeur);
}

// A table row: one cell per [text, class].
function ligne(cellules) {
  const tr = document.createElement("tr");
  for (const [texte, classe] of cellules) {
    const td = document.createElement("td");
    td.textContent = texte;
    td.className = classe;
    tr.append(td);
  }
  return tr;
}

// A value published for the territory, or summed from its EPCIs', is no
// aggregate of its communes: said so instead of the coverage.
const ORIGINES = { publiee: "valeur publiée", somme_epci: "somme des EPCI" };

// A ratio some of whose communes divided by an earlier year's denominator
// (a population not published yet): which year, or how many communes.
function repli(r) {
  const note = document.createElement("small");
  note.className = "repli";
  const communes = `${r.communes_repli} commune${r.communes_repli > 1 ? "s" : ""}`;
  note.textContent = r.annee_denominateur === null
    ? ` (dénominateur d'une année antérieure pour ${communes})`
    : ` (dénominateur de ${r.annee_denominateur})`;
  return note;
}

function tableau() {
  const rangs = [...affiche.lignes.values()].sort((a, b) => libelle(a).localeCompare(libelle(b), "fr"));
  // The edition of the map the territory and its communes are taken from.
  const editions = [...new Set(rangs.map((r) => r.millesime))];
  $("edition").textContent = editions.length ? `, sur la carte du COG ${editions.join(", ")}` : "";
  $("indicateurs").tBodies[0].replaceChildren(...rangs.map((r) => {
    const p = affiche.parent.get(`${cle(r)}|${r.annee}`);
    const tr = ligne([
      [libelle(r), ""],
      [String(r.annee), "nombre"],
      [valeur(r.valeur, r.unite), "nombre valeur"],
      [ORIGINES[r.origine] ?? pourcent.format(r.couverture), "nombre"],
      [p ? valeur(p.valeur, p.unite) : "—", "nombre"],
    ]);
    tr.dataset.cle = cle(r);
    if (r.valeur_publiee !== null && r.valeur_publiee !== undefined) {
      tr.querySelector(".valeur").title = r.origine === "publiee"
        ? "Valeur publiée pour le territoire par sa source"
        : `Valeur ${r.origine === "somme_epci" ? "sommée des EPCI" : "agrégée des communes"} ; publiée pour le territoire : ${valeur(r.valeur_publiee, r.unite)}`;
    } else if (r.origine === "somme_epci") {
      tr.querySelector(".valeur").title = "Somme des valeurs publiées pour les EPCI du département";
    }
    tr.querySelector(".valeur").dataset.indicateur = r.indicateur;
    if (r.communes_repli) tr.querySelector(".valeur").append(repli(r));
    return tr;
  }));
}

// The objectives brought to the territory (and its own), beside its latest
// value, with where it stands on the path.
async function objectifs() {
  const { fiche } = affiche;
  const reponse = await json(`/territoires/${fiche.niveau}/${encodeURIComponent(fiche.code)}/objectifs`);
  $("bloc-objectifs").hidden = !reponse.objectifs.length;
  $("objectifs").tBodies[0].replaceChildren(...reponse.objectifs.map((o) => {
    const atteint = o.atteint === null ? (o.valeur === null ? "pas de valeur" : "couverture incomplète")
      : (o.atteint ? "oui" : "non");
    const ecart = o.ecart === null ? "—" : `${o.ecart > 0 ? "+" : ""}${valeur(o.ecart, o.unite)}`;
    const tr = ligne([
      [o.portee === "locale" ? `${o.libelle} (objectif propre au territoire)` : o.libelle, ""],
      [String(o.annee_objectif), "nombre"],
      [valeur(o.objectif, o.unite), "nombre objectif"],
      [o.valeur === null ? "—" : `${valeur(o.valeur, o.unite)} (${o.annee_valeur})`, "nombre"],
      [ecart, "nombre"],
      [atteint, "atteint"],
      [trajectoire(o), "trajectoire"],
    ]);
    tr.dataset.indicateur = o.indicateur;
    tr.dataset.portee = o.portee;
    const cellule = tr.querySelector(".trajectoire");
    cellule.dataset.position = o.position ? o.position.position : "";
    cellule.title = o.position
      ? `Attendu en ${o.position.annee} sur la trajectoire ${o.trajectoire === "geometrique" ? "à taux constant" : "linéaire"} `
        + `de ${valeur(o.reference, o.unite)} (${o.annee_reference}) à ${valeur(o.objectif, o.unite)} (${o.annee_objectif}) : `
        + `${valeur(o.position.attendu, o.unite)}`
      : (SANS_POSITION[o.sans_position_code] || o.sans_position || "");
    return tr;
  }));
}

// Where the latest value stands on the path to the objective: ahead, on
// track or behind, by how much of what the path expects.
const POSITIONS = { en_avance: "en avance", sur_la_trajectoire: "sur la trajectoire", en_retard: "en retard" };
const SANS_POSITION = {
  sans_reference: "pas d’année de référence dans le catalogue",
  sans_valeur: "pas de valeur",
  couverture_incomplete: "couverture incomplète",
  avant_reference: "la dernière valeur est antérieure à l’année de référence",
};
function trajectoire(o) {
  if (!o.position) return "—";
  const p = o.position;
  const nom = POSITIONS[p.position];
  if (p.position === "sur_la_trajectoire" || p.ecart_relatif === null) return nom;
  const signe = p.ecart_relatif > 0 ? "+" : "−";
  return `${nom} (${signe}${pourcent.format(Math.abs(p.ecart_relatif))})`;
}

// Why a territory is not ranked, by the API's code, in French.
function enFrancais(r) {
  if (r.raison_code === "couverture_incomplete") {
    return `${nombre.format(r.communes_renseignees)} communes sur ${nombre.format(r.communes_total)} ont répondu`;
  }
  return { secret: "secret ou non renseigné", sans_valeur: "pas de valeur" }[r.raison_code] ?? r.raison;
}

// The territory's rank for each catalogued indicator at its latest year,
// among the territories of its level (GET …/comparaison, without typology).
async function classement() {
  const { fiche } = affiche;
  const parAnnee = new Map();
  for (const r of affiche.lignes.values()) {
    if (r.sous_champ !== "total" || r.valeur === null || !catalogue[r.indicateur]) continue;
    if (!parAnnee.has(r.annee)) parAnnee.set(r.annee, []);
    parAnnee.get(r.annee).push(r.indicateur);
  }
  const trouves = [];
  if (fiche.niveau !== "france") {
    for (const [annee, ids] of parAnnee) {
      for (let i = 0; i < ids.length; i += 8) {  // at most 8 indicators a request
        const p = new URLSearchParams({ indicateurs: ids.slice(i, i + 8).join(","), annee, grouper: "false", pairs: 0 });
        const reponse = await json(`/territoires/${fiche.niveau}/${encodeURIComponent(fiche.code)}/comparaison?${p}`);
        for (const r of reponse.rangs) trouves.push({ ...r, annee });
      }
    }
  }
  $("bloc-rangs").hidden = !trouves.length;
  trouves.sort((a, b) => libelle(a).localeCompare(libelle(b), "fr"));
  $("rangs").tBodies[0].replaceChildren(...trouves.map((r) => {
    const rang = r.rang === null ? `— (${enFrancais(r)})` : `${nombre.format(r.rang)} sur ${nombre.format(r.sur)}`;
    const mieux = r.meilleur_que === null ? "—" : `${pourcent.format(r.meilleur_que)} des ${PLURIELS[fiche.niveau]}`;
    const tr = ligne([[libelle(r), ""], [String(r.annee), "nombre"], [rang, "nombre rang"], [mieux, "nombre mieux"]]);
    tr.dataset.indicateur = r.indicateur;
    return tr;
  }));
}

// Each indicator over the years beside its parent's (its own scale, on the
// right: a commune's sum and its EPCI's are not of one size), and the same
// values in a table, for screen readers and for copying.
function graphiques() {
  const zoneGraphiques = $("graphiques");
  zoneGraphiques.replaceChildren();
  const series = [...affiche.historique].filter(([, annees]) => annees.size >= 2);
  if (!series.length) {
    const note = document.createElement("p");
    note.textContent = "Une seule année connue pour chaque indicateur : pas encore d’évolution à montrer.";
    zoneGraphiques.append(note);
  }
  const parent = affiche.fiche.parent;
  for (const [k, annees] of series) {
    const points = [...annees.entries()].sort((a, b) => a[0] - b[0]);
    const ligneParent = (annee) => affiche.parent.get(`${k}|${annee}`);
    const auParent = points.map(([annee]) => {
      const r = ligneParent(annee);
      return r && r.valeur !== null ? r.valeur : null;
    });
    const figure = document.createElement("figure");
    figure.dataset.cle = k;
    const legende = document.createElement("figcaption");
    legende.textContent = libelle(affiche.lignes.get(k));
    figure.append(legende);
    zoneGraphiques.append(figure);
    const courbes = [{ label: "année" }, { label: affiche.fiche.nom, stroke: "#000091", width: 2 }];
    const donnees = [points.map((p) => p[0]), points.map((p) => p[1])];
    // Years as ticks (no 2099.2), room for a value's digits.
    const axes = [
      { splits: (u) => u.data[0], values: (u, v) => v.map(String) },
      { size: 70, values: (u, v) => v.map((x) => nombre.format(x)) },
    ];
    if (parent && auParent.some((v) => v !== null)) {
      courbes.push({ label: parent.nom, stroke: "#c9191e", width: 2, dash: [6, 4], scale: "parent" });
      donnees.push(auParent);
      axes.push({ scale: "parent", side: 1, size: 70, grid: { show: false }, values: (u, v) => v.map((x) => nombre.format(x)) });
    }
    new uPlot({
      width: Math.min(figure.clientWidth || 320, 480), height: 180,
      scales: { x: { time: false } },
      axes, series: courbes, legend: { show: true, live: false },
    }, donnees, figure);
    figure.append(serie(points, auParent, parent, affiche.lignes.get(k).unite));
  }
}

// The values of a chart, year by year: a table under a disclosure.
function serie(points, auParent, parent, unite) {
  const details = document.createElement("details");
  const resume = document.createElement("summary");
  resume.textContent = "Les valeurs, année par année";
  const table = document.createElement("table");
  table.className = "serie";
  const tete = ligne([["Année", ""], [affiche.fiche.nom, "nombre"], [parent ? parent.nom : "", "nombre"]]);
  const corps = points.map(([annee, v], i) => {
    const tr = ligne([[String(annee), ""], [valeur(v, unite), "nombre"], [parent ? valeur(auParent[i], unite) : "", "nombre"]]);
    tr.dataset.annee = annee;
    return tr;
  });
  table.append(tete, ...corps);
  details.append(resume, table);
  return details;
}

async function membres(voulu) {
  const { fiche } = affiche;
  const choix = $("indicateur-membres");
  const cibles = [...affiche.lignes.values()].filter((r) => r.sous_champ === "total");
  if (!fiche.membres || !cibles.length) {
    $("titre-membres").textContent = "";
    $("membres").replaceChildren();
    choix.hidden = $("etiquette-membres").hidden = true;
    return;
  }
  choix.replaceChildren(...cibles.map((r) => new Option(libelle(r), r.indicateur)));
  choix.hidden = $("etiquette-membres").hidden = false;
  choix.onchange = () => {
    choisi(choix.value, null);
    barres(choix.value).catch(erreur);
  };
  const premier = cibles.find((r) => r.indicateur === voulu) || cibles[0];
  choix.value = premier.indicateur;
  await barres(premier.indicateur);
}

async function barres(indicateur) {
  const { fiche } = affiche;
  const r = affiche.lignes.get(`${indicateur}|total`);
  const p = zone(fiche);
  p.set("niveau", fiche.membres);
  p.set("indicateur", indicateur);
  p.set("annee", r.annee);
  const rangs = (await json(`/indicateurs?${p}&limit=1000`)).filter((m) => m.valeur !== null);
  $("titre-membres").textContent = `${libelle(r)} en ${r.annee}, par ${NIVEAUX[fiche.membres]} membre`;
  const zoneBarres = $("membres");
  zoneBarres.replaceChildren();
  if (!rangs.length) return;
  new uPlot({
    width: Math.min(zoneBarres.clientWidth || 320, 960), height: 240,
    scales: { x: { time: false }, y: { range: (u, min, max) => [Math.min(0, min), max * 1.05] } },
    axes: [
      { values: (u, v) => v.map((i) => (rangs[i] ? rangs[i].nom : "")), rotate: -45, size: 80 },
      { values: (u, v) => v.map((x) => nombre.format(x)) },
    ],
    series: [{}, { label: libelle(r), fill: "#6a6af4", paths: uPlot.paths.bars({ size: [0.8] }) }],
    legend: { show: false },
  }, [rangs.map((_, i) => i), rangs.map((m) => m.valeur)], zoneBarres);
}

// The map of the territory's level for each indicator it has, opened on the
// indicator and year of the address, else the territory's latest year of it.
async function laCarte(voulu, annee) {
  const totaux = [...affiche.lignes.values()].filter((r) => r.sous_champ === "total");
  const indicateurs = [...new Set(totaux.map((r) => r.indicateur))]
    .sort((a, b) => libelle({ indicateur: a, sous_champ: "total" }).localeCompare(libelle({ indicateur: b, sous_champ: "total" }), "fr"));
  const premier = indicateurs.includes(voulu) ? voulu : indicateurs[0];
  const derniere = affiche.lignes.get(`${premier}|total`);
  const ouvrir = (t) => afficher(t).catch(erreur);
  await carte.montrer(affiche.fiche, indicateurs, premier, Number(annee) || derniere?.annee, ouvrir, choisi);
}

// Live: each published change of this territory, or of its parent, updates
// its row without reload (EventSource reconnects by itself, after the last id).
function suivre(fiche) {
  flux.forEach((source) => source.close());
  flux = [];
  if (document.hidden) return;  // hidden while it loaded: followed once shown
  flux = [fiche, fiche.parent].filter(Boolean).map((t) => {
    const source = new EventSource(`/indicateurs/flux?${zone(t)}`);
    source.addEventListener("changement", (evenement) => {
      const r = JSON.parse(evenement.data);
      if (r.niveau !== t.niveau || r.code !== t.code) return;
      if (t === fiche) retenir(r);
      else affiche.parent.set(`${cle(r)}|${r.annee}`, r);
      tableau();
      graphiques();
      if (t === fiche) objectifs().then(classement).catch(erreur);
      const rang = document.querySelector(`tr[data-cle="${CSS.escape(cle(r))}"]`);
      if (rang) rang.classList.add("maj");
    });
    return source;
  });
}

// A browser opens six connections at most to one server over HTTP/1.1, and
// each stream holds one: a page hidden (another tab, or left for the next)
// closes its streams, and shown again reads its territory afresh (nothing
// missed) and follows it again.
function arreter() {
  flux.forEach((source) => source.close());
  flux = [];
  carte.arreter();
}
window.addEventListener("pagehide", arreter);
document.addEventListener("visibilitychange", () => {
  if (document.visibilityState === "hidden") arreter();
  else if (affiche && !flux.length) {
    const demande = new URLSearchParams(location.search);
    afficher(affiche.fiche, { garder: false, indicateur: demande.get("indicateur"), annee: demande.get("annee") }).catch(erreur);
  }
});

async function demarrer() {
  for (const i of await json("/indicateurs/catalogue")) catalogue[i.id] = i;
  $("recherche").addEventListener("submit", (e) => rechercher(e).catch(erreur));
  // Back and forward show the territory of that step.
  window.addEventListener("popstate", (e) => {
    if (e.state) afficher(e.state, { garder: false }).catch(erreur);
  });
  const demande = new URLSearchParams(location.search);
  if (demande.get("niveau") && demande.get("code")) {
    const t = { niveau: demande.get("niveau"), code: demande.get("code") };
    history.replaceState(t, "", location.href);
    await afficher(t, { garder: false, indicateur: demande.get("indicateur"), annee: demande.get("annee") });
  }
}

function erreur(e) {
  $("etat").textContent = `Erreur : ${e.message}`;
}

demarrer().catch(erreur);
