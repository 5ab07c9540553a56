# A tool whose outputs are empty directories (mkdir): they are kept in the output collection.
cwlVersion: v1.2
class: CommandLineTool
inputs: []
baseCommand: [mkdir, -p, a_dir, b_dir/inner]
outputs:
  directories:
    type: Directory[]
    outputBinding: {glob: '[ab]_dir'}
