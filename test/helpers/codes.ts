/** The `code` of the error `f` throws (undefined when it throws none or nothing). */
export const codeOf = (f: () => unknown): string | undefined => {
  try {
    f();
  } catch (e) {
    return (e as { code?: string }).code;
  }
  return undefined;
};
