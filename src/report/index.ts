/** Public API of the report layer: results -> self-contained HTML (Vega-Lite charts as SVG) and Markdown. */
export { renderReport, renderCharts, renderProfileReport, type ReportOptions } from './render';
export { reportCharts, profileCharts, type ChartSpec } from './charts';
export { renderVegaLiteSvg, loadVega, type RenderedChart, type VegaLiteSpec } from './vega';
export { studyMarkdown } from './markdown';
