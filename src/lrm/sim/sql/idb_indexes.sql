-- Created after the bulk load (faster than maintaining them row by row).
CREATE INDEX i_g_login_session_cts ON G_LOGIN_SESSION (CREATED_TS);
CREATE INDEX i_g_login_session_tts ON G_LOGIN_SESSION (TERMINATED_TS);
CREATE INDEX i_g_login_session_lsid ON G_LOGIN_SESSION (LOGINSESSIONID);
SELECT setval(pg_get_serial_sequence('g_login_session', 'id'), COALESCE(max(ID), 1),
              max(ID) IS NOT NULL) FROM G_LOGIN_SESSION;
ANALYZE G_LOGIN_SESSION;
