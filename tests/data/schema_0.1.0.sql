-- The schema of itte 0.1.0 as its services created it, before migrations
-- (pg_dump --schema-only): tests/integration/test_migrations.py upgrades it.
--
-- PostgreSQL database dump
--


-- Dumped from database version 18.6
-- Dumped by pg_dump version 18.6

SET statement_timeout = 0;
SET lock_timeout = 0;
SET idle_in_transaction_session_timeout = 0;
SET transaction_timeout = 0;
SET client_encoding = 'UTF8';
SET standard_conforming_strings = on;
SELECT pg_catalog.set_config('search_path', '', false);
SET check_function_bodies = false;
SET xmloption = content;
SET client_min_messages = warning;
SET row_security = off;

--
-- Name: itte_notify_change(); Type: FUNCTION; Schema: public; Owner: -
--

CREATE FUNCTION public.itte_notify_change() RETURNS trigger
    LANGUAGE plpgsql
    AS $$
BEGIN
    PERFORM pg_notify('itte_changes', TG_TABLE_NAME);
    RETURN NULL;
END $$;


SET default_tablespace = '';

SET default_table_access_method = heap;

--
-- Name: aggregates; Type: TABLE; Schema: public; Owner: -
--

CREATE TABLE public.aggregates (
    indicateur text NOT NULL,
    sous_champ text NOT NULL,
    annee integer NOT NULL,
    niveau character varying(12) NOT NULL,
    code character varying(9) NOT NULL,
    valeur numeric NOT NULL,
    nb_valeurs integer NOT NULL,
    unite text,
    numerateur numeric DEFAULT '0'::numeric NOT NULL,
    denominateur numeric DEFAULT '0'::numeric NOT NULL,
    revision bigint NOT NULL,
    published_revision bigint DEFAULT '0'::bigint NOT NULL,
    updated_at timestamp with time zone DEFAULT now() NOT NULL
);


--
-- Name: indicators; Type: TABLE; Schema: public; Owner: -
--

CREATE TABLE public.indicators (
    id text NOT NULL,
    libelle text NOT NULL,
    unite text,
    description text NOT NULL,
    source text NOT NULL,
    min numeric,
    max numeric,
    agregation text NOT NULL,
    numerateur text,
    denominateur text,
    facteur numeric NOT NULL,
    poids text
);


--
-- Name: territories; Type: TABLE; Schema: public; Owner: -
--

CREATE TABLE public.territories (
    niveau character varying(12) NOT NULL,
    code character varying(9) NOT NULL,
    nom text NOT NULL,
    communes_total integer NOT NULL
);


--
-- Name: aggregate_values; Type: VIEW; Schema: public; Owner: -
--

CREATE VIEW public.aggregate_values AS
 SELECT a.indicateur,
    a.sous_champ,
    a.annee,
    a.niveau,
    a.code,
    t.nom,
    COALESCE(i.agregation, 'non_agregeable'::text) AS agregation,
        CASE
            WHEN (a.nb_valeurs = 0) THEN NULL::numeric
            WHEN (i.agregation = 'ratio'::text) THEN ((a.numerateur / NULLIF(a.denominateur, (0)::numeric)) * i.facteur)
            WHEN ((i.agregation = 'moyenne_ponderee'::text) AND ((a.niveau)::text <> 'commune'::text)) THEN (a.numerateur / NULLIF(a.denominateur, (0)::numeric))
            ELSE a.valeur
        END AS valeur,
    COALESCE(i.unite, a.unite) AS unite,
        CASE
            WHEN ((a.niveau)::text = 'commune'::text) THEN LEAST(a.nb_valeurs, 1)
            ELSE a.nb_valeurs
        END AS communes_renseignees,
    t.communes_total,
    a.revision,
    a.published_revision,
    a.updated_at
   FROM ((public.aggregates a
     JOIN public.territories t ON ((((t.niveau)::text = (a.niveau)::text) AND ((t.code)::text = (a.code)::text))))
     LEFT JOIN public.indicators i ON ((i.id = a.indicateur)));


--
-- Name: communes; Type: TABLE; Schema: public; Owner: -
--

CREATE TABLE public.communes (
    code character varying(5) NOT NULL,
    nom text NOT NULL,
    departement character varying(3) NOT NULL,
    region character varying(3) NOT NULL,
    epci character varying(9),
    population integer
);


--
-- Name: former_codes; Type: TABLE; Schema: public; Owner: -
--

CREATE TABLE public.former_codes (
    ancien character varying(5) NOT NULL,
    actuel character varying(5) NOT NULL
);


--
-- Name: ingest_requests; Type: TABLE; Schema: public; Owner: -
--

CREATE TABLE public.ingest_requests (
    producer text NOT NULL,
    key text NOT NULL,
    body_sha256 text NOT NULL,
    status integer,
    response jsonb,
    claimed_at timestamp with time zone DEFAULT now() NOT NULL
);


--
-- Name: observations; Type: TABLE; Schema: public; Owner: -
--

CREATE TABLE public.observations (
    indicateur text NOT NULL,
    sous_champ text NOT NULL,
    annee integer NOT NULL,
    commune_source character varying(5) NOT NULL,
    commune character varying(5) NOT NULL,
    valeur numeric,
    marqueur text,
    unite text,
    libelle_indicateur text,
    libelle_sous_champ text,
    version bigint NOT NULL,
    version_explicite boolean DEFAULT false NOT NULL,
    recu bigint DEFAULT '0'::bigint NOT NULL,
    record_id text NOT NULL,
    pii jsonb,
    pii_key_id text,
    producteur text,
    updated_at timestamp with time zone DEFAULT now() NOT NULL
);


--
-- Name: referential_meta; Type: TABLE; Schema: public; Owner: -
--

CREATE TABLE public.referential_meta (
    id integer NOT NULL,
    version text NOT NULL,
    loaded_at timestamp with time zone DEFAULT now()
);


--
-- Name: referential_meta_id_seq; Type: SEQUENCE; Schema: public; Owner: -
--

CREATE SEQUENCE public.referential_meta_id_seq
    AS integer
    START WITH 1
    INCREMENT BY 1
    NO MINVALUE
    NO MAXVALUE
    CACHE 1;


--
-- Name: referential_meta_id_seq; Type: SEQUENCE OWNED BY; Schema: public; Owner: -
--

ALTER SEQUENCE public.referential_meta_id_seq OWNED BY public.referential_meta.id;


--
-- Name: referential_meta id; Type: DEFAULT; Schema: public; Owner: -
--

ALTER TABLE ONLY public.referential_meta ALTER COLUMN id SET DEFAULT nextval('public.referential_meta_id_seq'::regclass);


--
-- Name: aggregates aggregates_pkey; Type: CONSTRAINT; Schema: public; Owner: -
--

ALTER TABLE ONLY public.aggregates
    ADD CONSTRAINT aggregates_pkey PRIMARY KEY (indicateur, sous_champ, annee, niveau, code);


--
-- Name: communes communes_pkey; Type: CONSTRAINT; Schema: public; Owner: -
--

ALTER TABLE ONLY public.communes
    ADD CONSTRAINT communes_pkey PRIMARY KEY (code);


--
-- Name: former_codes former_codes_pkey; Type: CONSTRAINT; Schema: public; Owner: -
--

ALTER TABLE ONLY public.former_codes
    ADD CONSTRAINT former_codes_pkey PRIMARY KEY (ancien);


--
-- Name: indicators indicators_pkey; Type: CONSTRAINT; Schema: public; Owner: -
--

ALTER TABLE ONLY public.indicators
    ADD CONSTRAINT indicators_pkey PRIMARY KEY (id);


--
-- Name: ingest_requests ingest_requests_pkey; Type: CONSTRAINT; Schema: public; Owner: -
--

ALTER TABLE ONLY public.ingest_requests
    ADD CONSTRAINT ingest_requests_pkey PRIMARY KEY (producer, key);


--
-- Name: observations observations_pkey; Type: CONSTRAINT; Schema: public; Owner: -
--

ALTER TABLE ONLY public.observations
    ADD CONSTRAINT observations_pkey PRIMARY KEY (indicateur, sous_champ, annee, commune_source);


--
-- Name: referential_meta referential_meta_pkey; Type: CONSTRAINT; Schema: public; Owner: -
--

ALTER TABLE ONLY public.referential_meta
    ADD CONSTRAINT referential_meta_pkey PRIMARY KEY (id);


--
-- Name: territories territories_pkey; Type: CONSTRAINT; Schema: public; Owner: -
--

ALTER TABLE ONLY public.territories
    ADD CONSTRAINT territories_pkey PRIMARY KEY (niveau, code);


--
-- Name: aggregates_by_territory; Type: INDEX; Schema: public; Owner: -
--

CREATE INDEX aggregates_by_territory ON public.aggregates USING btree (niveau, code);


--
-- Name: aggregates_unpublished; Type: INDEX; Schema: public; Owner: -
--

CREATE INDEX aggregates_unpublished ON public.aggregates USING btree (indicateur, sous_champ, annee, niveau, code) WHERE ((revision > published_revision) AND ((niveau)::text <> 'commune'::text));


--
-- Name: ix_communes_departement; Type: INDEX; Schema: public; Owner: -
--

CREATE INDEX ix_communes_departement ON public.communes USING btree (departement);


--
-- Name: ix_communes_epci; Type: INDEX; Schema: public; Owner: -
--

CREATE INDEX ix_communes_epci ON public.communes USING btree (epci);


--
-- Name: ix_communes_region; Type: INDEX; Schema: public; Owner: -
--

CREATE INDEX ix_communes_region ON public.communes USING btree (region);


--
-- Name: aggregates itte_notify_change; Type: TRIGGER; Schema: public; Owner: -
--

CREATE TRIGGER itte_notify_change AFTER INSERT OR DELETE OR UPDATE OR TRUNCATE ON public.aggregates FOR EACH STATEMENT EXECUTE FUNCTION public.itte_notify_change();


--
-- Name: indicators itte_notify_change; Type: TRIGGER; Schema: public; Owner: -
--

CREATE TRIGGER itte_notify_change AFTER INSERT OR DELETE OR UPDATE OR TRUNCATE ON public.indicators FOR EACH STATEMENT EXECUTE FUNCTION public.itte_notify_change();


--
-- Name: territories itte_notify_change; Type: TRIGGER; Schema: public; Owner: -
--

CREATE TRIGGER itte_notify_change AFTER INSERT OR DELETE OR UPDATE OR TRUNCATE ON public.territories FOR EACH STATEMENT EXECUTE FUNCTION public.itte_notify_change();


--
-- PostgreSQL database dump complete
--


