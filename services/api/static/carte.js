// The map: départements or régions coloured by an indicator's value in a
// year, in five classes by quantiles, missing values hatched, each shape's
// value on hover, a click opens its territory, and changes applied live.
// The shapes are static files (static/cartes/, see docs/api.md). Plain
// script, loaded before page.js, which calls carte.montrer.
"use strict";

const carte = (() => {
  const SVG = "http://www.w3.org/2000/svg";
  const CLASSES = ["#dee5f7", "#a9bbeb", "#7490db", "#3f5ec4", "#000091"];
  const MANQUANT = "url(#carte-hachures)";
  const formes = {};  // niveau → the shapes file, fetched once
  let etat = null;    // {niveau, indicateur, annee, annees: Map(annee → Map(code → ligne)), …}
  let flux = null;

  // Breaks between the five classes: the values at each fifth of the sorted
  // list. A value's class is the number of breaks at or below it.
  function seuils(valeurs) {
    const tri = [...valeurs].sort((a, b) => a - b);
    return [1, 2, 3, 4].map((i) => tri[Math.floor((i * tri.length) / 5)]);
  }
  function classe(v, bornes) { return bornes.filter((b) => v >= b).length; }

  async function chargerFormes(niveau) {
    if (!formes[niveau]) formes[niveau] = await json(`/static/cartes/${niveau}s.json`);
    return formes[niveau];
  }

  function element(nom, attributs = {}) {
    const e = document.createElementNS(SVG, nom);
    for (const [k, v] of Object.entries(attributs)) e.setAttribute(k, v);
    return e;
  }

  // The SVG once per level: the hatching of missing values, the insets, the shapes.
  function dessiner(fichier, ouvrir) {
    // A group of links (role img would hide them from screen readers).
    const svg = element("svg", { viewBox: fichier.viewBox, role: "group", "aria-labelledby": "carte-titre", id: "carte-svg" });
    const motif = element("pattern", {
      id: "carte-hachures", width: 6, height: 6, patternUnits: "userSpaceOnUse", patternTransform: "rotate(45)",
    });
    motif.append(element("rect", { width: 6, height: 6, fill: "#f6f6f6" }), element("line", { x1: 0, y1: 0, x2: 0, y2: 6, stroke: "#929292", "stroke-width": 1.5 }));
    const defs = element("defs");
    defs.append(motif);
    svg.append(defs);
    for (const [x, y, w, h] of fichier.encadres) {
      svg.append(element("rect", { x, y, width: w, height: h, class: "encadre" }));
    }
    for (const f of fichier.formes) {
      const chemin = element("path", { d: f.d, "data-code": f.code, tabindex: 0, role: "link" });
      chemin.append(element("title"));
      chemin.dataset.nom = f.nom;
      chemin.addEventListener("click", () => ouvrir(f.code));
      chemin.addEventListener("keydown", (e) => { if (e.key === "Enter") ouvrir(f.code); });
      const lire = () => { $("carte-survol").textContent = chemin.querySelector("title").textContent; };
      chemin.addEventListener("mouseenter", lire);
      chemin.addEventListener("focus", lire);
      svg.append(chemin);
    }
    return svg;
  }

  function colorier() {
    const lignes = etat.annees.get(etat.annee) || new Map();
    const chemins = [...$("carte-svg").querySelectorAll("path[data-code]")];
    // Classes over the territories drawn (the overseas collectivités have no
    // shape; Paris and its first ring have two, the second enlarged).
    const codes = new Set(chemins.map((c) => c.dataset.code));
    const connues = [...codes].map((c) => lignes.get(c)).filter((r) => r && r.valeur !== null);
    const bornes = seuils(connues.map((r) => r.valeur));
    const unite = connues.length ? connues[0].unite : null;
    for (const chemin of chemins) {
      const r = lignes.get(chemin.dataset.code);
      const connue = r && r.valeur !== null;
      chemin.setAttribute("fill", connue ? CLASSES[classe(r.valeur, bornes)] : MANQUANT);
      chemin.dataset.valeur = connue ? String(r.valeur) : "";
      chemin.dataset.classe = connue ? String(classe(r.valeur, bornes)) : "manquante";
      chemin.classList.toggle("ici", chemin.dataset.code === etat.ici);
      if (chemin.dataset.code === etat.ici) chemin.parentNode.append(chemin);  // its outline on top
      chemin.querySelector("title").textContent = `${chemin.dataset.nom} : ${connue ? valeur(r.valeur, r.unite) : "pas de valeur"}`;
    }
    legende(bornes, connues, unite);
  }

  // One line a class that holds values: its smallest and largest value.
  function legende(bornes, connues, unite) {
    const parClasse = CLASSES.map(() => []);
    for (const r of connues) parClasse[classe(r.valeur, bornes)].push(r.valeur);
    const items = [];
    parClasse.forEach((valeurs, i) => {
      if (!valeurs.length) return;
      const bas = Math.min(...valeurs), haut = Math.max(...valeurs);
      items.push([CLASSES[i], `${nombre.format(bas)} à ${valeur(haut, unite)} (${valeurs.length})`]);
    });
    items.push([null, "pas de valeur (ou secrète)"]);
    $("carte-legende").replaceChildren(...items.map(([couleur, texte]) => {
      const li = document.createElement("li");
      const pastille = element("svg", { width: 18, height: 12, "aria-hidden": "true" });
      pastille.append(element("rect", { width: 18, height: 12, fill: couleur || MANQUANT, stroke: "#929292" }));
      li.append(pastille, document.createTextNode(` ${texte}`));
      return li;
    }));
    const nom = libelle({ indicateur: etat.indicateur, sous_champ: "total" });
    $("carte-titre").textContent = `${nom} en ${etat.annee ?? "—"}, par ${NIVEAUX[etat.niveau]}`;
  }

  async function remplir() {
    const p = new URLSearchParams({ niveau: etat.niveau, indicateur: etat.indicateur, sous_champ: "total" });
    etat.annees = new Map();
    for (const r of await toutes(`/indicateurs?${p}`)) garder(r);
    const choix = $("carte-annee");
    const annees = [...etat.annees.keys()].sort((a, b) => b - a);
    choix.replaceChildren(...annees.map((a) => new Option(String(a), String(a))));
    etat.annee = annees.includes(etat.annee) ? etat.annee : annees[0];
    if (etat.annee !== undefined) choix.value = String(etat.annee);
    colorier();
    suivre(p);
  }

  function garder(r) {
    if (!etat.annees.has(r.annee)) etat.annees.set(r.annee, new Map());
    etat.annees.get(r.annee).set(r.code, r);
  }

  // Live: each change of the level's values for the indicator recolours the map.
  function suivre(p) {
    arreter();
    if (document.hidden) return;  // page.js shows it again, and this with it
    flux = new EventSource(`/indicateurs/flux?${p}`);
    const suivi = etat;
    flux.addEventListener("changement", (e) => {
      const r = JSON.parse(e.data);
      if (suivi !== etat || r.niveau !== etat.niveau || r.indicateur !== etat.indicateur) return;
      garder(r);
      if (r.annee === etat.annee) colorier();
    });
  }

  // The shape to outline on a level's map: the territory, else its parent,
  // else the département it lies in (a commune's, as the API says).
  function dedans(fiche, niveau) {
    const t = [fiche, fiche.parent, fiche.departement].find((x) => x && x.niveau === niveau);
    return t ? t.code : null;
  }

  // The map beside a territory: départements (régions for a région or
  // France), the territory or the one that contains it outlined.
  // ``choisi(indicateur, annee)``: told each choice, for the address.
  async function montrer(fiche, indicateurs, voulu, annee, ouvrir, choisi) {
    const niveau = fiche.niveau === "region" || fiche.niveau === "france" ? "region" : "departement";
    $("bloc-carte").hidden = !indicateurs.length;
    if (!indicateurs.length) return;
    const choix = $("carte-indicateur");
    choix.replaceChildren(...indicateurs.map((i) => new Option(libelle({ indicateur: i, sous_champ: "total" }), i)));
    choix.value = indicateurs.includes(voulu) ? voulu : indicateurs[0];
    $("carte-niveau").value = niveau;
    etat = { niveau, indicateur: choix.value, annee, ici: dedans(fiche, niveau), annees: new Map() };
    const redessiner = async () => {
      $("carte").replaceChildren(dessiner(await chargerFormes(etat.niveau), (code) => ouvrir({ niveau: etat.niveau, code })));
      await remplir();
    };
    choix.onchange = () => {
      etat.indicateur = choix.value;
      remplir().then(() => choisi(etat.indicateur, etat.annee)).catch(erreur);
    };
    $("carte-niveau").onchange = () => {
      etat.niveau = $("carte-niveau").value;
      etat.ici = dedans(fiche, etat.niveau);
      redessiner().catch(erreur);
    };
    $("carte-annee").onchange = () => {
      etat.annee = Number($("carte-annee").value);
      colorier();
      choisi(etat.indicateur, etat.annee);
    };
    await redessiner();
  }

  // Its stream closed (a hidden page holds none; see page.js).
  function arreter() {
    if (flux) flux.close();
    flux = null;
  }

  return { montrer, arreter, seuils, classe };
})();
