-- A simulated ICON database (IDB): the G_LOGIN_SESSION subset lrm reads (SPEC §4.1) and the
-- data-source session control table of role gls (research/sources-interfaces.md §1.6, §5.1).
-- Unquoted identifiers, folded to lower case by PostgreSQL, as in an ICON PostgreSQL IDB.

CREATE TABLE G_DSS_GLS_PROVIDER (
  DSS_ID          integer     NOT NULL PRIMARY KEY,
  ICON_DBID       integer     NOT NULL,
  DS_DBID         integer,
  DS_DBID_PRIM    integer,
  DS2_DBID        integer,
  DS_TYPE         integer,
  ICON_STIME      timestamp,
  DSCONN_STIME    timestamp,
  DSCONN_SDSTIME  timestamp,
  DSCONN_SDSTS    integer,
  DSCONN_TYPE     integer,
  ICON_ETIME      timestamp,
  DSCONN_ETIME    timestamp,
  FEVENT_ITIME    timestamp,
  FEVENT_DSTIME   timestamp,
  FEVENT_DSSEQ    varchar(255)
);

CREATE TABLE G_LOGIN_SESSION (
  ID bigserial PRIMARY KEY,
  LOGINSESSIONID varchar(50) NOT NULL,
  AGENTID integer,
  LOGINID integer,
  PLACEID integer,
  STATE integer NOT NULL,
  PRIMARYDEVICEID integer,
  CREATED timestamp NOT NULL,
  TERMINATED timestamp,
  CREATED_TS integer NOT NULL,
  TERMINATED_TS integer,
  PROVIDERTAG integer,
  GSYS_DOMAIN integer, GSYS_SEQ bigint, GSYS_USEQ bigint
);
