/** Names the model to serve when the path does not (`/predict` with a routes file). */
export const MODEL_HEADER = 'x-model';
/** Pins the version of the model (the request), or names the one that served it (the answer). */
export const MODEL_VERSION_HEADER = 'x-model-version';
